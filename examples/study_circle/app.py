"""The AI Study Circle's flows, each checking its own result.

1. set up the five tables from the registry, and list them;
2. register users (a duplicate email or username is refused), find them by email;
3. upload content;
4. summarize a document and build an exam from it in one transaction, with the usage
   counters of the content and of its owner (all or nothing);
5. list a user's content newest first, in pages;
6. find public templates by date, and templates by type and category;
7. count usage with atomic updates, from many concurrent writers;
8. delete the tables.

The tables live under ``DYNAMODB_TABLE_PREFIX`` (default ``ai-study-circle-``) followed by
a fresh run id, so runs never see each other's data: ``ai-study-circle-1a2b3c-users``...
"""

import asyncio
import os
from datetime import UTC, datetime, timedelta

import dynamodm as dm
from dynamodm.local import LocalServer

from .models import (
    Attempt,
    Content,
    Exam,
    ExamConfiguration,
    Preferences,
    Question,
    Summary,
    SummaryConfiguration,
    Template,
    User,
    study_circle,
)

PREFIX = os.environ.get("DYNAMODB_TABLE_PREFIX") or "ai-study-circle-"
UPLOADED = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
TITLES = [
    "Cell biology, chapter 1",
    "Cell biology, chapter 2",
    "Organic chemistry basics",
    "Linear algebra: vectors",
    "Linear algebra: matrices",
    "World history: 1900-1945",
    "Essay writing checklist",
]


def check(ok: bool, wrong: str) -> None:
    """Stop the run when a result is not the expected one."""
    if not ok:
        raise SystemExit(f"study_circle FAILED: {wrong}")


def step(name: str, text: str) -> None:
    print(f"  {name:<18} {text}")


# -- 1. tables


async def set_up_tables(db: dm.Session) -> None:
    expected = {db.table_name(model) for model in study_circle.models}
    check(len(expected) == 5, f"five models, five tables; got {sorted(expected)}")
    created = await db.create_tables(*study_circle.models)
    check(expected <= set(created), f"create_tables returned {created}")
    listed = await db.list_tables()
    guard = f"{db.table_prefix}dynamodm-unique"  # holds the unique email/username values
    check(set(listed) == expected | {guard}, f"list_tables returned {listed}")
    step("create_tables", ", ".join(sorted(expected)))
    step("list_tables", f"{len(listed)} tables (the five, and {guard})")


# -- 2. users


async def register_users(db: dm.Session) -> tuple[User, User]:
    ada = await User.create(
        username="ada",
        email="ada@example.com",
        role="teacher",
        subscription_plan="premium",
        preferences=Preferences(summary_style="detailed", difficulty="hard"),
    )
    bob = await User.create(username="bob", email="bob@example.com")
    step("register", f"ada ({ada.role}, {ada.subscription_plan}), bob ({bob.role})")

    for field, username, email in (
        ("email", "ada2", "ada@example.com"),
        ("username", "ada", "someone@example.com"),
    ):
        try:
            await User.create(username=username, email=email)
        except dm.UniqueViolation as error:
            taken = email if field == "email" else username
            check(
                (error.field, error.value) == (field, taken),
                f"UniqueViolation should name {field}={taken!r}, got {error.field}={error.value!r}",
            )
            step("register", f"duplicate {error.field} refused: UniqueViolation")
        else:
            raise SystemExit(f"study_circle FAILED: a duplicate {field} was registered")
    count = await User.scan().count()
    check(count == 2, f"refused registrations must write nothing; {count} users stored")

    found = await User.get_by(email="ada@example.com")
    check(found.id == ada.id, f"get_by(email=) found {found.username}")
    by_index = await User.query("bob@example.com", index="EmailIndex").first()
    check(by_index is not None and by_index.id == bob.id, "EmailIndex lookup of bob")
    by_name = await User.query("ada", index="UsernameIndex").first()
    check(by_name is not None and by_name.email == "ada@example.com", "UsernameIndex lookup")
    step("get_by", "email='ada@example.com' -> ada (through the unique guard)")
    step("EmailIndex", "bob@example.com -> bob; UsernameIndex 'ada' -> ada")

    # Changing a unique field releases the old value in the same transaction.
    await bob.update(email="robert@example.com")
    try:
        await User.get_by(email="bob@example.com")
    except dm.NotFound:
        pass
    else:
        raise SystemExit("study_circle FAILED: the old email should have been released")
    check((await User.get_by(email="robert@example.com")).id == bob.id, "bob's new email")
    step("update", "bob's email -> robert@example.com; the old value is free again")

    raw = (await db.client.get_item(TableName=db.table_name(User), Key={"id": {"S": ada.id}}))[
        "Item"
    ]
    check(
        raw["subscriptionPlan"] == {"S": "premium"}
        and raw["preferences"]["M"]["summaryStyle"] == {"S": "detailed"}
        and raw["apiUsage"]["M"]["tokensUsed"] == {"N": "0"},
        f"camelCase attribute names on the wire, got {sorted(raw)}",
    )
    step("on the wire", "subscriptionPlan, preferences.summaryStyle, apiUsage.tokensUsed")
    return ada, bob


# -- 3. content


async def upload_content(ada: User, bob: User) -> list[Content]:
    uploads = [
        await Content.create(
            owner=ada.id,
            title=title,
            content_type="pdf" if n % 2 else "text",
            source_text=f"{title}: the full text of the document.",
            file_path=f"uploads/{ada.id}/{n}.pdf" if n % 2 else None,
            category=title.split(",")[0].split(":")[0].lower(),
            source_metadata={"pages": n + 1, "language": "en", "ocr": n % 2 == 1},
            status="ready",
            created_at=UPLOADED + timedelta(hours=n),
        )
        for n, title in enumerate(TITLES)
    ]
    await Content.create(owner=bob.id, title="Bob's notes", source_text="Notes.", status="ready")
    stored = await Content.get(uploads[3].id, consistent=True)
    check(stored == uploads[3], f"content reads back equal, got {stored!r}")
    check(stored.source_metadata == {"pages": 4, "language": "en", "ocr": True}, "the map")
    step("upload", f"{len(uploads)} documents for ada, 1 for bob")
    return uploads


# -- 4. summary and exam in one transaction


async def summarize_and_examine(ada: User, notes: Content) -> tuple[Summary, Exam]:
    summary = Summary(
        owner=ada.id,
        content_id=notes.id,
        summary_text="Cells are the basic unit of life; organelles divide the work.",
        summary_type="key-points",
        configuration=SummaryConfiguration(max_words=120, focus=["organelles"]),
        metadata={"model": "gpt-4o-mini", "tokens": 812, "temperature": 0.2},
    )
    exam = Exam(
        owner=ada.id,
        content_id=notes.id,
        title="Cell biology quiz",
        questions=[
            Question(
                question="Which organelle produces most of the cell's ATP?",
                options=["Nucleus", "Mitochondrion", "Ribosome"],
                answer="Mitochondrion",
                points=2,
            ),
            Question(
                question="Plant cells have a cell wall.", question_type="true-false", answer="true"
            ),
        ],
        configuration=ExamConfiguration(question_count=2, difficulty="easy", time_limit_minutes=10),
    )
    usage = dm.attr(Content.usage)
    api = dm.attr(User.api_usage)
    tokens = 812 + 1530
    async with dm.transaction() as tx:
        tx.create(summary)
        tx.create(exam)
        tx.update(
            notes,
            usage.summaries.set(usage.summaries + 1),
            usage.exams.set(usage.exams + 1),
        )
        tx.update(
            ada,
            api.summaries_generated.set(api.summaries_generated + 1),
            api.exams_generated.set(api.exams_generated + 1),
            api.tokens_used.set(api.tokens_used + tokens),
        )

    stored_notes = await Content.get(notes.id, consistent=True)
    stored_ada = await User.get(ada.id, consistent=True)
    check(
        (stored_notes.usage.summaries, stored_notes.usage.exams) == (1, 1),
        f"content usage after the transaction: {stored_notes.usage}",
    )
    check(
        (stored_ada.api_usage.summaries_generated, stored_ada.api_usage.tokens_used) == (1, tokens),
        f"ada's API usage after the transaction: {stored_ada.api_usage}",
    )
    summaries = await Summary.query(notes.id, index="ContentIndex").all()
    exams = await Exam.query(notes.id, index="ContentIndex").all()
    check([s.id for s in summaries] == [summary.id], "the summary, by ContentIndex")
    check([e.id for e in exams] == [exam.id], "the exam, by ContentIndex")
    check(exams[0].questions == exam.questions, "the exam's questions round-trip")
    step("transaction", "summary + exam created, content and user counters +1, together")

    # All or nothing: the exam id is taken, so the new summary is not written either.
    retry_summary = Summary(owner=ada.id, content_id=notes.id, summary_text="A second try.")
    same_exam = exam.model_copy(update={"title": "Duplicate"})
    try:
        async with dm.transaction() as tx:
            tx.create(retry_summary)
            tx.create(same_exam)
            tx.update(notes, usage.summaries.set(usage.summaries + 1))
    except dm.TransactionCanceled as error:
        codes = [reason.code for reason in error.reasons]
        check(
            codes[1] == "ConditionalCheckFailed",
            f"the exam create should be the failing action; reasons: {codes}",
        )
        step("transaction", f"exam id taken -> TransactionCanceled, reasons {codes}")
    else:
        raise SystemExit("study_circle FAILED: creating an existing exam must cancel")
    check(await Summary.get_or_none(retry_summary.id, consistent=True) is None, "no summary")
    after = await Content.get(notes.id, consistent=True)
    check(after.usage.summaries == 1, f"counters unchanged, got {after.usage}")
    step("transaction", "nothing written: no second summary, usage.summaries still 1")

    mine = await Summary.query(ada.id, index="OwnerIndex", reverse=True).all()
    check([s.id for s in mine] == [summary.id], "ada's summaries by OwnerIndex")
    return summary, exam


# -- 5. a user's content, newest first, in pages


async def list_content(ada: User, uploads: list[Content]) -> None:
    newest_first = Content.query(ada.id, index="OwnerIndex", reverse=True)
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await newest_first.page(size=3, cursor=cursor)
        check(len(page.items) <= 3, f"a page holds at most 3 items, got {len(page.items)}")
        pages.append([item.title for item in page.items])
        cursor = page.cursor
        if cursor is None:
            break
    titles = [title for page_titles in pages for title in page_titles]
    check(titles == TITLES[::-1], f"ada's content newest first: {titles}")
    check([len(p) for p in pages] == [3, 3, 1], f"pages of 3: {[len(p) for p in pages]}")
    step("OwnerIndex", f"newest first in pages of 3: {[len(p) for p in pages]}")
    step("", f"first page: {pages[0]}")

    since = UPLOADED + timedelta(hours=4)
    recent = await Content.query(
        ada.id, dm.attr(Content.created_at) >= since, index="OwnerIndex"
    ).all()
    check([c.id for c in recent] == [c.id for c in uploads[4:]], "content since 13:00")
    step("OwnerIndex", f"uploaded since {since:%H:%M}: {len(recent)} documents")


# -- 6. templates


async def find_templates(db: dm.Session, ada: User, bob: User) -> Template:
    first = datetime(2025, 2, 1, 12, 0, tzinfo=UTC)
    specs = [
        ("Lecture digest", "summary", "science", True, 0, ada),
        ("Quick quiz", "exam", "science", True, 3, ada),
        ("Private drill", "exam", "math", False, 5, bob),
        ("History outline", "summary", "history", True, 10, bob),
        ("Essay review", "summary", "language", False, 12, ada),
    ]
    templates = {
        name: await Template.create(
            name=name,
            template_type=kind,
            category=category,
            is_public=public,
            created_by=author.id,
            created_at=first + timedelta(days=days),
            summary_config=SummaryConfiguration(max_words=150) if kind == "summary" else None,
            exam_config=ExamConfiguration(question_count=10) if kind == "exam" else None,
        )
        for name, kind, category, public, days, author in specs
    }
    step("templates", f"{len(templates)} created, 3 public")

    quiz = templates["Quick quiz"]
    raw = (await db.client.get_item(TableName=db.table_name(Template), Key={"id": {"S": quiz.id}}))[
        "Item"
    ]
    check(raw["isPublic"] == {"N": "1"}, f"isPublic is an index key: N 1, got {raw['isPublic']}")
    stored = await Template.get(quiz.id, consistent=True)
    check(stored.is_public is True, f"isPublic reads back as a bool, got {stored.is_public!r}")
    step("on the wire", f"isPublic = {raw['isPublic']} (an index key), read back as True")

    created = dm.attr(Template.created_at)
    since = first + timedelta(days=2)
    recent = await Template.query(
        True, created >= since, index="PublicTemplatesIndex", reverse=True
    ).all()
    check(
        [t.name for t in recent] == ["History outline", "Quick quiz"],
        f"public templates since 3 Feb, newest first: {[t.name for t in recent]}",
    )
    step("PublicTemplates", f"since {since:%d %b}, newest first: {[t.name for t in recent]}")
    window = await Template.query(
        True, created.between(first, first + timedelta(days=4)), index="PublicTemplatesIndex"
    ).all()
    check([t.name for t in window] == ["Lecture digest", "Quick quiz"], "1 to 5 Feb")
    private = await Template.query(False, index="PublicTemplatesIndex").all()
    check(
        [t.name for t in private] == ["Private drill", "Essay review"],
        f"private templates by date: {[t.name for t in private]}",
    )
    step("PublicTemplates", f"1-5 Feb: {[t.name for t in window]}; private: 2")

    drill = templates["Private drill"]
    await drill.update(is_public=True)
    now_public = await Template.query(True, index="PublicTemplatesIndex").all()
    check(drill.id in {t.id for t in now_public}, "a template made public joins the index")
    step("update", "'Private drill' made public: it is in PublicTemplatesIndex now")

    summaries = await Template.query("summary", index="TypeCategoryIndex").all()
    check(
        [t.category for t in summaries] == ["history", "language", "science"],
        f"summary templates by category: {[t.category for t in summaries]}",
    )
    science_exams = await Template.query(
        "exam", Template.category == "science", index="TypeCategoryIndex"
    ).all()
    check([t.name for t in science_exams] == ["Quick quiz"], "exam templates in science")
    step("TypeCategory", f"summary: {[t.category for t in summaries]}; exam/science: 1")

    by_ada = await Template.query(ada.id, index="CreatedByIndex", reverse=True).all()
    check(
        [t.name for t in by_ada] == ["Essay review", "Quick quiz", "Lecture digest"],
        f"ada's templates newest first: {[t.name for t in by_ada]}",
    )
    step("CreatedByIndex", f"ada's, newest first: {[t.name for t in by_ada]}")
    return quiz


# -- 7. usage counters


async def count_usage(notes: Content, exam: Exam, quiz: Template, bob: User) -> None:
    # Each is one UpdateItem computed by DynamoDB (ADD, SET path = path + 1), sent by key
    # without reading the item first (update_key), and all of them at once: DynamoDB (and
    # the embedded server) applies each atomically, so none is lost. touch=False leaves
    # UpdatedAt alone: a counter is not an edit.
    writers = 20
    await asyncio.gather(
        *(
            Template.update_key(quiz.id, dm.attr(Template.usage).add(1), touch=False)
            for _ in range(writers)
        )
    )
    views = dm.attr(Content.usage).views
    await asyncio.gather(
        *(Content.update_key(notes.id, views.set(views + 1), touch=False) for _ in range(writers))
    )
    stored_quiz = await Template.get(quiz.id, consistent=True)
    stored_notes = await Content.get(notes.id, consistent=True)
    check(stored_quiz.usage == writers, f"template usage {stored_quiz.usage}, want {writers}")
    check(stored_notes.usage.views == writers, f"views {stored_notes.usage.views}")
    check(stored_notes.usage.summaries == 1, "other counters in the map are left alone")
    step("atomic add", f"{writers} x ADD usage 1 -> usage = {stored_quiz.usage}")
    step("atomic set", f"{writers} x SET usage.views + 1 -> {stored_notes.usage.views}")

    await quiz.update(dm.attr(Template.ratings).append([5]))
    await quiz.update(dm.attr(Template.ratings).append([4]))
    check(quiz.ratings == [5, 4], f"ratings appended: {quiz.ratings}")

    analytics = dm.attr(Exam.analytics)
    attempt = Attempt(user_id=bob.id, score=0.5, submitted_at=datetime.now(UTC))
    await exam.update(
        dm.attr(Exam.attempts).append([attempt]),
        analytics.attempt_count.set(analytics.attempt_count + 1),
    )
    check(
        (exam.attempts, exam.analytics.attempt_count) == ([attempt], 1),
        f"an attempt recorded: {exam.attempts}, count {exam.analytics.attempt_count}",
    )
    step("append", "template ratings [5, 4]; exam attempt recorded, attemptCount 1")


async def run(endpoint_url: str) -> None:
    prefix = f"{PREFIX}{dm.new_id()[:6]}-"
    async with dm.connect(endpoint_url=endpoint_url, table_prefix=prefix) as db:
        await set_up_tables(db)
        try:
            ada, bob = await register_users(db)
            uploads = await upload_content(ada, bob)
            notes = uploads[0]
            _summary, exam = await summarize_and_examine(ada, notes)
            await list_content(ada, uploads)
            quiz = await find_templates(db, ada, bob)
            await count_usage(notes, exam, quiz, bob)
        finally:
            deleted = await db.delete_tables(*study_circle.models)
        left = await db.list_tables()
        check(not left, f"tables left after delete_tables: {left}")
        step("delete_tables", f"{len(deleted)} tables deleted, none left under {prefix}")


async def main() -> None:
    print("AI Study Circle")
    endpoint_url = os.environ.get("DYNAMODB_ENDPOINT_URL")
    if endpoint_url:
        step("server", f"{endpoint_url} (from DYNAMODB_ENDPOINT_URL)")
        await run(endpoint_url)
    else:
        async with LocalServer() as server:
            step("server", f"embedded moto at {server.endpoint_url}")
            await run(server.endpoint_url)
    print("all checks passed")
