"""Link: which CRM user (rep) or contact each LMS learner is, and their learning evidence in one table."""

from training_roi.linking.identity import LINK_INPUTS, LinkInfo, link, read_explicit_links
from training_roi.linking.records import learning_records

__all__ = ["LINK_INPUTS", "LinkInfo", "learning_records", "link", "read_explicit_links"]
