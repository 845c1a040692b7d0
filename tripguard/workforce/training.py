"""Training: courses the trainer writes, taken by drivers and couriers from their app (or the training
page), passed on a quiz, rated, and certified.

Who must take what:
- a course marked `required` for the worker's audience must be passed before the worker is dispatched
  (new workers, before activation);
- a pass runs out after the course's `refresher_months`, and the worker takes it again (refresher);
- a violation can send a worker back to a course (retraining), which blocks dispatch until passed.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.clock import utcnow
from tripguard.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from tripguard.core.ids import new_id
from tripguard.workforce.models import Attempt, Course, Retraining

CONTENT = ("kind", "audience", "title_zh", "title_en", "modules", "quiz", "pass_mark", "required",
           "refresher_months")


def add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def _check_quiz(quiz: list[dict[str, object]]) -> None:
    problems = []
    for number, question in enumerate(quiz):
        options_zh, options_en = question["options_zh"], question["options_en"]
        assert isinstance(options_zh, list) and isinstance(options_en, list)
        if len(options_zh) != len(options_en):
            problems.append(FieldProblem(field=f"quiz.{number}.options_en",
                                         message="as many options in English as in Chinese"))
        answer = question["answer"]
        if not isinstance(answer, int) or not 0 <= answer < len(options_zh):
            problems.append(FieldProblem(field=f"quiz.{number}.answer", message="must name one of the options"))
    if problems:
        raise InvalidInput("the quiz does not hold together", errors=problems)


def put_course(session: Session, *, actor: Actor, course_id: str, content: dict[str, object]) -> tuple[Course, bool]:
    """Create or change a course; returns (course, created). A change of content raises its version
    (passes already earned stay valid until they run out)."""
    _check_quiz(content["quiz"])  # type: ignore[arg-type]
    now = utcnow()
    course = session.get(Course, course_id)
    if course is None:
        course = Course(id=course_id, version=1, created_at=now, updated_at=now, **content)
        session.add(course)
        created = True
    else:
        if all(getattr(course, name) == content[name] for name in CONTENT):
            return course, False
        for name in CONTENT:
            setattr(course, name, content[name])
        course.version += 1
        course.updated_at = now
        created = False
    audit.record(session, actor=actor, action="training.course_put", target_type="workforce_courses",
                 target_id=course_id, details={"version": str(course.version), "required": str(course.required)})
    return course, created


def get_course(session: Session, *, course_id: str) -> Course:
    course = session.get(Course, course_id)
    if course is None:
        raise NotFound("no such course")
    return course


def courses(session: Session) -> list[Course]:
    return list(session.scalars(select(Course).order_by(Course.kind, Course.id)))


def course_ids(session: Session) -> list[str]:
    return list(session.scalars(select(Course.id).order_by(Course.id)))


@dataclass(frozen=True)
class CourseFigures:
    attempts: int  # quizzes submitted
    passed: int  # workers who ever passed
    current: int  # workers whose pass is in force
    rated: int
    mean: float | None  # the mean rating, to 2 places


def course_figures(session: Session, *, course_id: str) -> CourseFigures:
    """How a course is taken: one aggregate query whatever the number of workers."""
    in_force = or_(Attempt.expires_at.is_(None), Attempt.expires_at > utcnow())
    attempts, passes, current, rated, mean = session.execute(select(
        func.count(Attempt.id), func.count(func.distinct(Attempt.worker_id)).filter(Attempt.passed.is_(True)),
        func.count(func.distinct(Attempt.worker_id)).filter(Attempt.passed.is_(True), in_force),
        func.count(Attempt.rating), func.avg(Attempt.rating)).where(Attempt.course_id == course_id)).one()
    return CourseFigures(attempts=attempts, passed=passes, current=current, rated=rated,
                         mean=round(float(mean), 2) if mean is not None else None)


def for_audience(role: str) -> tuple[str, str]:
    return role, "worker"


@dataclass(frozen=True)
class Due:
    course: Course
    reason: str  # onboarding | refresher | retraining | done
    passed_at: datetime | None
    expires_at: datetime | None


def plan(session: Session, *, worker_id: str, role: str) -> list[Due]:
    """Every course for this worker's audience, with why it is due (or `done`)."""
    now = utcnow()
    retraining = set(session.scalars(select(Retraining.course_id).where(Retraining.worker_id == worker_id,
                                                                       Retraining.done_at.is_(None))))
    result = []
    for course in session.scalars(select(Course).where(Course.audience.in_(for_audience(role)))
                                  .order_by(Course.required.desc(), Course.id)):
        last = session.scalar(select(Attempt).where(Attempt.worker_id == worker_id, Attempt.course_id == course.id,
                                                    Attempt.passed.is_(True)).order_by(Attempt.at.desc()).limit(1))
        current = last is not None and (last.expires_at is None or last.expires_at > now)
        if course.id in retraining:
            reason = "retraining"
        elif current:
            reason = "done"
        elif last is not None and course.required:
            reason = "refresher"
        elif course.required:
            reason = "onboarding"
        else:
            reason = "optional"
        result.append(Due(course, reason, last.at if last else None, last.expires_at if last else None))
    return result


def submit(session: Session, *, actor: Actor, worker_id: str, role: str, course_id: str, answers: list[int],
           idempotency_key: str | None) -> Attempt:
    """Mark a quiz. A pass records the completion with its certificate number (and when it runs out) and
    ends any retraining on this course."""
    key = f"{worker_id}:{idempotency_key}" if idempotency_key else None
    if key is not None:
        existing = session.scalar(select(Attempt).where(Attempt.idempotency_key == key))
        if existing is not None:
            return existing
    course = get_course(session, course_id=course_id)
    if course.audience not in for_audience(role):
        raise NotFound("no such course for you")
    if len(answers) != len(course.quiz):
        raise InvalidInput(f"answer each of the {len(course.quiz)} questions",
                           errors=[FieldProblem(field="answers", message=f"{len(course.quiz)} answers")])
    beyond = [FieldProblem(field=f"answers.{n}", message=f"choose one of the {len(q['options_en'])} options")
              for n, (q, answer) in enumerate(zip(course.quiz, answers, strict=True)) if answer >= len(q["options_en"])]
    if beyond:
        raise InvalidInput("an answer names no option of its question", errors=beyond)
    right = sum(1 for question, answer in zip(course.quiz, answers, strict=True) if question["answer"] == answer)
    score = right * 100 // len(course.quiz)
    now = utcnow()
    passed = score >= course.pass_mark
    attempt = Attempt(id=new_id("att"), worker_id=worker_id, course_id=course.id, course_version=course.version,
                      score=score, passed=passed, at=now, idempotency_key=key,
                      expires_at=add_months(now, course.refresher_months) if passed and course.refresher_months
                      else None,
                      certificate_no=f"TG{now:%Y%m%d}-{new_id('c')[-10:].upper()}" if passed else None)
    try:
        with session.begin_nested():
            session.add(attempt)
    except IntegrityError as exc:  # the same key twice at once: the first is the attempt
        raise Conflict("this attempt is being recorded; retry") from exc
    if passed:
        session.execute(update(Retraining).where(Retraining.worker_id == worker_id, Retraining.course_id == course.id,
                                                 Retraining.done_at.is_(None)).values(done_at=now))
    audit.record(session, actor=actor, action="training.attempt", target_type="workforce_courses",
                 target_id=course.id, outcome="success" if passed else "denied",
                 details={"attempt": attempt.id, "score": str(score)})
    return attempt


def own_attempt(session: Session, *, worker_id: str, attempt_id: str) -> Attempt:
    attempt = session.get(Attempt, attempt_id)
    if attempt is None or attempt.worker_id != worker_id:
        raise NotFound("no such attempt")
    return attempt


def rate(session: Session, *, worker_id: str, attempt_id: str, rating: int) -> Attempt:
    """The satisfaction survey after a passed course, once (the same rating again is a retry)."""
    attempt = own_attempt(session, worker_id=worker_id, attempt_id=attempt_id)
    if not attempt.passed:
        raise Conflict("a course is rated once it is passed")
    if attempt.rating is not None:
        if attempt.rating != rating:
            raise Conflict("this course was already rated")
        return attempt
    attempt.rating, attempt.rated_at = rating, utcnow()
    return attempt


def assign_retraining(session: Session, *, worker_id: str, course_id: str, violation_id: str) -> Retraining:
    get_course(session, course_id=course_id)
    row = Retraining(id=new_id("rtr"), worker_id=worker_id, course_id=course_id, violation_id=violation_id,
                     assigned_at=utcnow())
    session.add(row)
    return row


def passed_in(session: Session, *, start: datetime, end: datetime, worker_ids: list[str] | None = None
              ) -> list[tuple[Attempt, Course]]:
    """Passed attempts in [start, end) with their course, oldest first (the regulator's training records)."""
    statement = (select(Attempt, Course).join(Course, Course.id == Attempt.course_id)
                 .where(Attempt.passed.is_(True), Attempt.at >= start, Attempt.at < end))
    if worker_ids is not None:
        statement = statement.where(Attempt.worker_id.in_(worker_ids))
    return [(a, c) for a, c in session.execute(statement.order_by(Attempt.at, Attempt.id))]
