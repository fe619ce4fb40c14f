"""The organisation in the CRM: users, teams, accounts and contacts (User.csv, Account.csv, Contact.csv).

Reps are grouped by region into teams of about eight, each under a manager, the managers under a
vice president per region; support staff and others complete the users. Each rep owns a few
customer accounts with pipeline and one prospect account, each with a few contacts. A rep's
latent skill drives the sales model. The word lists for names, companies and regions are here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from training_roi.simulate.draws import _pick, _stream
from training_roi.simulate.fields import _id_counters, _masked, _salesforce_ids, _sf_datetime, _slug
from training_roi.simulate.period import _DAY, _NEVER, _Calendar
from training_roi.simulate.scenarios import _Turnover
from training_roi.simulate.turnover import _more_turnover

_ORG_DOMAIN = "example.com"

_FIRST = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony",
    "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily",
    "Andrew", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian",
    "Dorothy", "George", "Melissa", "Timothy", "Deborah", "Ronald", "Stephanie", "Jason",
    "Rebecca", "Edward", "Sharon", "Jeffrey", "Laura", "Ryan", "Cynthia", "Jacob", "Kathleen",
    "Gary", "Amy", "Nicholas", "Angela", "Eric", "Shirley", "Jonathan", "Anna", "Priya", "Wei",
    "Aisha", "Mohammed", "Sofia", "Lukas", "Chloé", "José", "Zoë", "Søren", "Ingrid", "Hiroshi",
    "Mei", "Arjun", "Fatima", "Olga", "Mateo", "Léa", "Noah", "Emma", "Liam", "Olivia", "Ananya",
    "Kenji", "Yuki", "Thandiwe", "Siobhan", "Rafael", "Nadia", "Björn",
)
_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "O'Brien", "O'Connor", "D'Souza",
    "McCarthy", "MacDonald", "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Dubois",
    "Lefèvre", "Rossi", "Bianchi", "Kowalski", "Nowak", "Novák", "Jansen", "de Vries",
    "van der Berg", "Andersen", "Nielsen", "Johansson", "Lindqvist", "Tanaka", "Suzuki", "Sato",
    "Watanabe", "Kim", "Park", "Chen", "Wang", "Li", "Zhang", "Liu", "Singh", "Patel", "Sharma",
    "Gupta", "Khan", "Ahmed", "Okafor", "Mensah", "Dlamini", "Silva", "Santos", "Oliveira",
    "Pereira", "Costa", "Núñez", "Castillo", "Morales", "Ortiz", "Gutierrez", "Chavez", "Ramos",
    "Ruiz", "Alvarez", "Mendoza", "Vasquez", "Jimenez", "Moreno", "Romero", "Herrera", "Medina",
    "Aguilar", "Fernández", "Kelly", "Murphy", "Sullivan", "Byrne", "Walsh", "Ryan", "Doyle",
)
_COMPANY = (
    "Northwind", "Blue Ridge", "Acme", "Globex", "Initech", "Umbrella", "Cyberdyne", "Hooli",
    "Vandelay", "Soylent", "Tyrell", "Oceanic", "Pied Piper", "Massive Dynamic", "Aperture",
    "Contoso", "Fabrikam", "Litware", "Tailspin", "Wide World", "Adventure Works", "Proseware",
    "Lucerne", "Alpine", "Coho", "Fourth Coffee", "Margie's", "Trey", "Woodgrove", "Humongous",
    "Bellows", "Silverline", "Redwood", "Granite", "Harbor", "Summit", "Pioneer", "Keystone",
    "Evergreen", "Lakeside", "Sunrise", "Ironclad", "Bluebird", "Copperleaf", "Nordlicht",
    "Sakura", "Kestrel", "Meridian", "Orchid", "Tundra",
)
# (name part, Salesforce Industry picklist value)
_CORE = (
    ("Logistics", "Transportation"), ("Health", "Healthcare"), ("Foods", "Food & Beverage"),
    ("Systems", "Technology"), ("Energy", "Energy"), ("Capital", "Finance"),
    ("Robotics", "Machinery"), ("Media", "Media"), ("Pharma", "Biotechnology"),
    ("Textiles", "Apparel"), ("Analytics", "Technology"), ("Manufacturing", "Manufacturing"),
    ("Software", "Technology"), ("Retail", "Retail"), ("Insurance", "Insurance"),
    ("Telecom", "Telecommunications"), ("Motors", "Manufacturing"), ("Consulting", "Consulting"),
    ("Hospitality", "Hospitality"), ("Construction", "Construction"),
)
_CO_SUFFIX = (", Inc.", " Inc.", " LLC", " Ltd", " GmbH", " Group", " & Co.", " Corp.", ", LLC", " plc", "")
# (region, [(country, [states], utc offset minutes)], share of reps)
_REGIONS: tuple[tuple[str, tuple[tuple[str, tuple[str, ...], int], ...], float], ...] = (
    ("North America - West", (("United States", ("CA", "WA", "OR", "AZ", "CO", "UT"), -480),), 0.25),
    ("North America - Central", (("United States", ("TX", "IL", "MN", "MO", "WI"), -360),), 0.20),
    ("North America - East", (("United States", ("NY", "MA", "GA", "FL", "NC", "PA", "NJ"), -300),), 0.25),
    ("EMEA", (("United Kingdom", (), 0), ("Germany", (), 60), ("France", (), 60),
              ("Netherlands", (), 60), ("South Africa", (), 120)), 0.20),
    ("APAC", (("Australia", (), 600), ("Singapore", (), 480), ("Japan", (), 540), ("India", (), 330)), 0.10),
)
_REP_TITLES = ("Account Executive", "Senior Account Executive", "Enterprise Account Executive",
               "Account Executive, Mid-Market")
_CONTACT_TITLES = ("Chief Executive Officer", "CFO", "VP, Procurement", "Director of Operations", "IT Manager",
                   "Head of Sales", "Procurement Specialist", "COO", "VP, Engineering",
                   "Office Manager")


@dataclass
class _Org:
    """CRM users (reps first), accounts and contacts, with the latent traits the model uses."""

    n_reps: int
    kind: np.ndarray  # per user: 0 rep, 1 manager, 2 vice president, 3 support, 4 other
    region: np.ndarray  # per user: index into _REGIONS (-1: none)
    country: np.ndarray  # per user: index into the region's countries
    offset_min: np.ndarray  # per user: UTC offset of their time zone
    hire_day: np.ndarray  # per user: day index of hire (negative: before the period)
    leave_day: np.ndarray  # per user: day index they left (_NEVER: still there)
    skill: np.ndarray  # per rep: latent selling skill ~ N(0, 1)
    manager: np.ndarray  # per user: manager user index (-1: none)
    first: pl.Series
    last: pl.Series
    email: pl.Series  # lower case, unique
    user_id: pl.Series
    users: pl.DataFrame  # User.csv
    acc_start: np.ndarray  # per rep: first account index
    acc_selling: np.ndarray  # per rep: number of accounts with pipeline (the last one is a prospect)
    acc_owner: np.ndarray  # per account: rep index
    account_id: pl.Series
    account_name: pl.Series
    account_domain: pl.Series
    account_deleted: np.ndarray
    accounts: pl.DataFrame  # Account.csv
    con_start: np.ndarray  # per account: first contact index
    con_count: np.ndarray  # per account: number of contacts
    contact_id: pl.Series
    contacts: pl.DataFrame  # Contact.csv

    def rep_days(self, n_days: int) -> tuple[np.ndarray, np.ndarray]:
        """Per rep: the days ``[lo, hi)`` of a period of ``n_days`` days that they are employed in."""
        return (np.clip(self.hire_day[: self.n_reps], 0, n_days),
                np.clip(self.leave_day[: self.n_reps], 0, n_days))

    def employed_through(self, lo: int, hi: int) -> np.ndarray:
        """Per rep: hired before day index ``lo`` and still employed after ``hi``."""
        return (self.hire_day[: self.n_reps] < lo) & (self.leave_day[: self.n_reps] > hi)


def _people(rng: np.random.Generator, n: int) -> tuple[pl.Series, pl.Series, pl.Series]:
    """Draw first names, last names and their email local parts (``first.last``)."""
    fi = rng.integers(0, len(_FIRST), n)
    li = rng.integers(0, len(_LAST), n)
    first = pl.Series(_FIRST, dtype=pl.String).gather(fi)
    last = pl.Series(_LAST, dtype=pl.String).gather(li)
    local = pl.select(
        pl.concat_str([
            pl.Series([_slug(x) for x in _FIRST]).gather(fi), pl.lit("."),
            pl.Series([_slug(x) for x in _LAST]).gather(li),
        ])
    ).to_series()
    return first, last, local


def _unique_emails(local: pl.Series, domain: str | pl.Series) -> pl.Series:
    """Make addresses unique per domain the way IT departments do: ``jane.doe@acme.com``, then ``jane.doe2@…``.

    ``domain`` is everyone's, or each person's.
    """
    df = pl.DataFrame({"local": local}).with_columns(domain=pl.lit(domain) if isinstance(domain, str) else domain)
    return df.with_columns(k=pl.int_range(pl.len()).over("local", "domain")).select(
        pl.concat_str([
            pl.col("local"),
            pl.when(pl.col("k") > 0).then((pl.col("k") + 1).cast(pl.String)).otherwise(pl.lit("")),
            pl.lit("@"), pl.col("domain"),
        ])
    ).to_series()


def _company_names(rng: np.random.Generator, n: int) -> tuple[pl.Series, pl.Series, np.ndarray]:
    """Draw company names (some with commas and quotes, as real ones), domains and industries."""
    pi = rng.integers(0, len(_COMPANY), n)
    ci = rng.integers(0, len(_CORE), n)
    si = rng.integers(0, len(_CO_SUFFIX), n)
    quoted = rng.random(n) < 0.01
    prefix = pl.Series(_COMPANY).gather(pi)
    prefix = pl.select(
        pl.when(pl.Series(quoted)).then(pl.concat_str([pl.lit('"'), prefix, pl.lit('"')])).otherwise(prefix)
    ).to_series()
    name = pl.select(
        pl.concat_str([prefix, pl.lit(" "), pl.Series([c for c, _ in _CORE]).gather(ci),
                       pl.Series(_CO_SUFFIX).gather(si)])
    ).to_series()
    domain = pl.select(
        pl.concat_str([pl.Series([_slug(c) for c in _COMPANY]).gather(pi),
                       pl.Series([_slug(c) for c, _ in _CORE]).gather(ci), pl.lit(".com")])
    ).to_series()
    return name, domain, ci


def _build_org(cal: _Calendar, reps: int, seed: int, turnover: _Turnover | None = None) -> _Org:
    """Create the CRM users, accounts and contacts of an org with ``reps`` sales reps.

    ``turnover`` (scenario turnover) hires and lets go more reps during the period; every other
    draw stays the seed's.
    """
    rng = _stream(seed, "org")
    # Reps, grouped by region so that teams of about eight share a region and a manager.
    rep_region = np.sort(rng.choice(len(_REGIONS), size=reps, p=[r[2] for r in _REGIONS]))
    skill = rng.standard_normal(reps)
    team_of_rep = np.zeros(reps, np.int64)
    team_region: list[int] = []
    for r in range(len(_REGIONS)):
        members = np.flatnonzero(rep_region == r)
        if members.size == 0:
            continue
        n_teams = math.ceil(members.size / 8)
        team_of_rep[members] = len(team_region) + np.arange(members.size) * n_teams // members.size
        team_region += [r] * n_teams
    n_mgr = len(team_region)
    vp_regions = sorted(set(team_region))
    n_vp = len(vp_regions)
    n_sup = max(2, round(reps / 25))
    n_oth = max(2, round(reps / 50))
    n = reps + n_mgr + n_vp + n_sup + n_oth
    kind = np.concatenate([np.zeros(reps), np.ones(n_mgr), np.full(n_vp, 2), np.full(n_sup, 3),
                           np.full(n_oth, 4)]).astype(np.int8)
    region = np.concatenate([rep_region, team_region, vp_regions, np.full(n_sup + n_oth, -1)]).astype(np.int64)
    country = np.zeros(n, np.int64)
    offset = np.zeros(n, np.int64)
    for r, (_, countries, _) in enumerate(_REGIONS):
        at = np.flatnonzero(region == r)
        country[at] = rng.integers(0, len(countries), at.size)
        offset[at] = np.array([c[2] for c in countries])[country[at]]
    offset[region < 0] = -300
    manager = np.full(n, -1, np.int64)
    manager[:reps] = reps + team_of_rep
    vp_index = {r: reps + n_mgr + i for i, r in enumerate(vp_regions)}
    manager[reps : reps + n_mgr] = [vp_index[r] for r in team_region]
    # Tenure: most people were hired before the period; some reps join during it, some leave.
    tenure = np.exp(rng.normal(math.log(900), 0.7, n)).astype(np.int64) + 30
    hire = -tenure
    new = (kind == 0) & (rng.random(n) < 0.08)
    hire[new] = rng.integers(0, max(1, int(0.6 * cal.n_days)), int(new.sum()))
    leave = np.full(n, _NEVER, np.int64)
    left = (kind == 0) & ~new & (rng.random(n) < 0.05)
    leave[left] = rng.integers(int(0.5 * cal.n_days), cal.n_days, int(left.sum()))
    if turnover is not None:
        hire, leave = _more_turnover(cal, kind, hire, leave, seed, turnover)

    first, last, local = _people(rng, n)
    email = _unique_emails(local, _ORG_DOMAIN)
    user_id = _salesforce_ids("005", _id_counters(rng, n, hire))
    role_names = (
        [f"Sales Rep - {r[0]}" for r in _REGIONS] + [f"Sales Manager - {r[0]}" for r in _REGIONS]
        + [f"VP Sales - {r[0]}" for r in _REGIONS] + ["Customer Support", "Operations"]
    )
    role_id = _salesforce_ids("00E", _id_counters(rng, len(role_names)))
    nreg = len(_REGIONS)
    role = np.where(kind <= 2, kind * nreg + np.maximum(region, 0), np.where(kind == 3, 3 * nreg, 3 * nreg + 1))
    rep_title = rng.choice(len(_REP_TITLES), size=n, p=[0.55, 0.25, 0.12, 0.08])
    rep_title = np.where((tenure > 3 * 365) & (rep_title == 0), 1, rep_title)
    other_titles = ("Marketing Manager", "Sales Operations Analyst", "Sales Enablement Manager",
                    "System Administrator")
    other_depts = ("Marketing", "Sales Operations", "Enablement", "IT")
    oth_pick = rng.integers(0, len(other_titles), n)
    title = pl.select(
        pl.when(pl.Series(kind == 0)).then(pl.Series(_REP_TITLES).gather(rep_title))
        .when(pl.Series(kind == 1)).then(pl.lit("Regional Sales Manager"))
        .when(pl.Series(kind == 2)).then(pl.lit("Vice President, Sales"))
        .when(pl.Series(kind == 3)).then(pl.lit("Customer Support Engineer"))
        .otherwise(pl.Series(other_titles).gather(oth_pick))
    ).to_series()
    dept = pl.select(
        pl.when(pl.Series(kind <= 2)).then(pl.lit("Sales"))
        .when(pl.Series(kind == 3)).then(pl.lit("Customer Support"))
        .otherwise(pl.Series(other_depts).gather(oth_pick))
    ).to_series()
    region_name = _masked(pl.Series([r[0] for r in _REGIONS]).gather(np.maximum(region, 0)), region >= 0)
    hire_ts = cal.business_instants(hire, hire + 1, rng.random(n), rng.integers(8 * 3600, 18 * 3600, n),
                                    offset)
    hire_ts = np.where(hire < 0, (cal.start_day + hire) * _DAY + rng.integers(8 * 3600, 18 * 3600, n) - offset * 60,
                       hire_ts)
    users = pl.DataFrame({
        "Id": user_id,
        "Username": pl.select(pl.concat_str([email, pl.lit(".crm")])).to_series(),
        "Email": email,
        "FirstName": first,
        "LastName": last,
        "Name": pl.select(pl.concat_str([first, pl.lit(" "), last])).to_series(),
        "IsActive": leave >= cal.n_days,
        "UserRoleId": pl.Series(role_id).gather(role),
        "ManagerId": _masked(user_id.gather(np.maximum(manager, 0)), manager >= 0),
        "Department": dept,
        "Title": title,
        "CreatedDate": _sf_datetime(hire_ts),
        "Region__c": region_name,
    })

    # Accounts: each rep owns a few customer accounts with pipeline and one prospect account.
    selling = 1 + rng.poisson(4.5, reps)
    per_rep = selling + 1
    acc_start = np.concatenate([[0], np.cumsum(per_rep)[:-1]])
    n_acc = int(per_rep.sum())
    acc_owner = np.repeat(np.arange(reps), per_rep)
    is_prospect = np.zeros(n_acc, bool)
    is_prospect[acc_start + selling] = True
    acc_created = cal.start_s - rng.integers(30 * _DAY, 6 * 365 * _DAY, n_acc)
    acc_name, acc_domain, core = _company_names(rng, n_acc)
    employees = np.exp(rng.normal(math.log(400), 1.4, n_acc)).astype(np.int64) + 5
    revenue = np.round(employees * np.exp(rng.normal(math.log(180_000), 0.5, n_acc)), -3)
    state_pick = rng.random(n_acc)
    acc_deleted = is_prospect & (rng.random(n_acc) < 0.03)
    account_id = _salesforce_ids("001", _id_counters(rng, n_acc, acc_created))
    acc_type = pl.select(
        pl.when(pl.Series(is_prospect)).then(pl.lit("Prospect"))
        .otherwise(_pick(rng, ("Customer - Direct", "Customer - Channel"), n_acc, (0.8, 0.2)))
    ).to_series()
    accounts = pl.DataFrame({
        "Id": account_id,
        "IsDeleted": acc_deleted,
        "Name": acc_name,
        "Type": acc_type,
        **_account_columns(core=core, revenue=revenue, employees=employees, owner_id=user_id.gather(acc_owner),
                           region=rep_region[acc_owner], country=country[acc_owner], u_state=state_pick,
                           created_s=acc_created),
    })

    # Contacts: a few per account, at the account's domain.
    con_count = 1 + rng.poisson(1.5, n_acc)
    con_start = np.concatenate([[0], np.cumsum(con_count)[:-1]])
    n_con = int(con_count.sum())
    con_acc = np.repeat(np.arange(n_acc), con_count)
    cfirst, clast, clocal = _people(rng, n_con)
    con_created = acc_created[con_acc] + (rng.random(n_con) * (cal.start_s - acc_created[con_acc])).astype(np.int64)
    contact_id = _salesforce_ids("003", _id_counters(rng, n_con, con_created))
    contacts = pl.DataFrame({
        "Id": contact_id,
        "IsDeleted": acc_deleted[con_acc] | (rng.random(n_con) < 0.003),
        "AccountId": account_id.gather(con_acc),
        "FirstName": cfirst,
        "LastName": clast,
        "Email": pl.select(pl.concat_str([clocal, pl.lit("@"), acc_domain.gather(con_acc)])).to_series(),
        "Title": _pick(rng, _CONTACT_TITLES, n_con),
        "CreatedDate": _sf_datetime(con_created),
        "Buying_Role__c": _pick(rng, ("Decision Maker", "Economic Buyer", "Champion", "Influencer",
                                      "Evaluator"), n_con),
    })
    return _Org(
        n_reps=reps, kind=kind, region=region, country=country, offset_min=offset, hire_day=hire,
        leave_day=leave, skill=skill, manager=manager, first=first, last=last, email=email,
        user_id=user_id, users=users, acc_start=acc_start, acc_selling=selling, acc_owner=acc_owner,
        account_id=account_id, account_name=acc_name, account_domain=acc_domain,
        account_deleted=acc_deleted, accounts=accounts, con_start=con_start, con_count=con_count,
        contact_id=contact_id, contacts=contacts,
    )


def _account_columns(*, core: np.ndarray, revenue: np.ndarray, employees: np.ndarray, owner_id: pl.Series,
                     region: np.ndarray, country: np.ndarray, u_state: np.ndarray,
                     created_s: np.ndarray) -> dict[str, pl.Series | np.ndarray]:
    """Account.csv's columns from Industry to Tier__c, in order.

    The billing address is in the owner's ``region`` and ``country`` (its index in the region),
    and in one of the country's states, picked by the uniform ``u_state``, where it has any.
    """
    cflat = _flat_country(region, country)
    countries = [c for _, group, _ in _REGIONS for c in group]
    n_states = np.array([len(c[1]) for c in countries])[cflat]
    state_off = np.concatenate([[0], np.cumsum([len(c[1]) for c in countries])[:-1]])[cflat]
    all_states = [s for c in countries for s in c[1]]
    state_idx = state_off + np.floor(u_state * np.maximum(n_states, 1)).astype(np.int64)
    return {
        "Industry": pl.Series([i for _, i in _CORE]).gather(core),
        "AnnualRevenue": revenue.astype(np.int64),
        "NumberOfEmployees": employees,
        "OwnerId": owner_id,
        "BillingState": _masked(pl.Series(all_states).gather(np.minimum(state_idx, len(all_states) - 1)),
                                n_states > 0),
        "BillingCountry": pl.Series([c[0] for c in countries]).gather(cflat),
        "CreatedDate": _sf_datetime(created_s),
        "Tier__c": pl.Series(np.where(employees >= 2000, "Enterprise",
                                      np.where(employees >= 200, "Mid-Market", "SMB"))),
    }


def _flat_country(region: np.ndarray, country: np.ndarray) -> np.ndarray:
    """Map (region, country-within-region) pairs to an index over all countries, vectorised."""
    sizes = np.array([len(r[1]) for r in _REGIONS])
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.asarray(first[region] + country, dtype=np.int64)


def _region_names(org: _Org, users: np.ndarray) -> pl.Series:
    """Return the Region__c value of each user in ``users``."""
    region = org.region[users]
    return _masked(pl.Series([r[0] for r in _REGIONS]).gather(np.maximum(region, 0)), region >= 0)
