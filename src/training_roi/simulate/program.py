"""The Sales Excellence program as the LMS knows it: activity ids, the course and its six lessons.

:class:`_Course` describes a program's course; the CRM go-live's CRM Basics has the same shape, so
its activities keep the same indices in the statements.
"""

from __future__ import annotations

from typing import NamedTuple

_LMS_HOME = "https://lms.example.com"
_ACT = "https://lms.example.com/xapi/activities"
_PROGRAM = "Sales Excellence"
_PROGRAM_ID = f"{_ACT}/program/sales-excellence"
_COURSE_ID = f"{_ACT}/course/sales-excellence"
_COURSE_NAME = "Sales Excellence: Core Course"
_LESSONS = (
    ("01-discovery", "Discovery Questions That Uncover Pain"),
    ("02-value", "Value Selling in Five Minutes"),
    ("03-objections", "Handling Objections"),
    ("04-negotiation", "Negotiating Without Discounting"),
    ("05-closing", "Closing and Mutual Action Plans"),
    ("06-pipeline", "Pipeline Hygiene"),
)


class _Course(NamedTuple):
    """A program's course as the LMS knows it: names, activity ids and (six) lessons."""

    program: str
    program_id: str
    course_id: str
    title: str
    lessons: tuple[tuple[str, str], ...]  # (slug, title); as many as _LESSONS, so other activities keep their index
    application: tuple[str, str]  # the two level-3 (application) survey questions


_SALES_COURSE = _Course(_PROGRAM, _PROGRAM_ID, _COURSE_ID, _COURSE_NAME, _LESSONS,
                        ("used_discovery_framework", "frequency_of_use"))
