"""Alert rules of a deployment, their evaluation from stored rows (rollups, drift, quality reports) and webhooks."""
import datetime as dt
import logging

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from dashboard.errors import FieldError, ValidationFailed
from dashboard.models import Deployment
from dashboard.services.background import task_send_on_commit
from monitoring.histograms import bin_edges
from monitoring.models import (Alert, AlertKind, AlertRule, AlertStatus, ModelRole, NotificationState, QualityReport,
                               RollupBucket, StatsRollup)
from monitoring.selectors.stats import stats_window
from monitoring.services.drift import drift_report

logger = logging.getLogger(__name__)

EDITABLE = ("kind", "threshold", "window_minutes", "webhook_url", "active")


def _validated(rule: AlertRule) -> AlertRule:
    try:
        rule.full_clean(exclude=["deployment", "created_by", "memory"])
    except ValidationError as refused:
        raise ValidationFailed.from_errors([FieldError(field, " ".join(messages))
                                            for field, messages in refused.message_dict.items()]) from None
    return rule


def alert_rule_create(*, deployment: Deployment, created_by, kind: str, threshold: float = 0.0,
                      window_minutes: int = 60, webhook_url: str = "", active: bool = True) -> AlertRule:
    rule = _validated(AlertRule(deployment=deployment, created_by=created_by, kind=kind, threshold=threshold,
                                window_minutes=window_minutes, webhook_url=webhook_url, active=active))
    rule.save()
    return rule


def alert_rule_update(*, rule: AlertRule, **changes) -> AlertRule:
    """Change some of EDITABLE; a changed kind or threshold forgets what the evaluation remembered."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationFailed.from_errors([FieldError(name, "cannot be changed") for name in sorted(unknown)])
    condition_changed = any(changes.get(name, getattr(rule, name)) != getattr(rule, name)
                            for name in ("kind", "threshold", "window_minutes"))
    for name, value in changes.items():
        setattr(rule, name, value)
    _validated(rule)
    with transaction.atomic():
        if condition_changed:
            rule.memory = {}
        rule.save()
        if condition_changed or not rule.active:
            # The old condition's firing ends with it; the new one is evaluated from scratch.
            _resolve(rule, timezone.now(), value=None, why="the rule changed" if rule.active else "the rule was paused")
    return rule


def alert_rule_delete(*, rule: AlertRule) -> None:
    rule.delete()


def alerts_active(*, deployment: Deployment) -> list[Alert]:
    """The deployment's firing alerts, newest first."""
    return list(Alert.objects.filter(rule__deployment=deployment, status=AlertStatus.FIRING)
                .select_related("rule").order_by("-started_at"))


def alerts_history(*, deployment: Deployment, limit: int = 100) -> list[Alert]:
    return list(Alert.objects.filter(rule__deployment=deployment).select_related("rule")
                .order_by("-started_at")[:limit])


# Evaluation: each kind reads a few stored rows and answers (firing?, value, message).


def _latency(rule: AlertRule, now: dt.datetime, shared: dict):
    figures = stats_window(deployment=rule.deployment, start=now - dt.timedelta(minutes=rule.window_minutes), end=now)
    p95 = figures.quantile("latency", 0.95)
    if not figures.count or p95 is None:
        return False, None, "no predictions in the window"
    ms = p95 * 1000
    return ms > rule.threshold, ms, f"p95 latency {ms:.0f} ms over the last {rule.window_minutes} min " \
                                    f"(limit {rule.threshold:g} ms)"


def _under_threshold(rule: AlertRule, now: dt.datetime, shared: dict):
    figures = stats_window(deployment=rule.deployment, start=now - dt.timedelta(minutes=rule.window_minutes), end=now)
    if not figures.count:
        return False, None, "no predictions in the window"
    # The top-score histogram's bins lying wholly under min_threshold (bins are 0.05 wide, so the share is read at
    # that resolution: a threshold of 0.42 counts the bins up to 0.40).
    edges = bin_edges("max_score")
    counts = figures.histogram("max_score")
    under = sum(n for n, upper in zip(counts, edges[1:]) if upper <= rule.deployment.min_threshold + 1e-9)
    share = under / figures.count
    return share > rule.threshold, share, (f"{share:.0%} of predictions under the min threshold "
                                           f"{rule.deployment.min_threshold:g} (limit {rule.threshold:.0%})")


def _drift(rule: AlertRule, now: dt.datetime, shared: dict):
    # One report per deployment and run: N drift rules on a deployment (a webhook each) test its day once.
    key = ("drift", rule.deployment_id, "hour", now)
    if key not in shared:
        shared[key] = drift_report(deployment=rule.deployment, start=now - dt.timedelta(days=1), end=now,
                                   window="hour")
    report = shared[key]
    if not report["windows"]:
        return False, None, "no predictions in the last day"
    latest = report["windows"][-1]
    return latest["drifted"], latest["share"], (f"{latest['drifted_features']} of {latest['computable_features']} "
                                                f"features drift in the hour from {latest['start'][:16]}")


def _quality_value(deployment: Deployment):
    """The champion's mAP (detection, segmentation) or accuracy (classification) in the newest stored quality report
    of the whole history, with that report's time; reports are computed by workers, never here."""
    report = (QualityReport.objects.filter(deployment=deployment, result__isnull=False, computed_at__isnull=False)
              .order_by("-computed_at").only("result", "computed_at").first())
    champion = (report.result or {}).get("champion") if report else None
    if not champion:
        return None, None, None
    if champion.get("coco_stats"):
        return champion["coco_stats"][0], report.computed_at, "mAP"
    if champion.get("accuracy") is not None:
        return champion["accuracy"], report.computed_at, "accuracy"
    return None, None, None


def _map_below(rule: AlertRule, now: dt.datetime, shared: dict):
    value, _, metric = _quality_value(rule.deployment)
    if value is None:
        return False, None, "no quality report yet (review some predictions)"
    return value < rule.threshold, value, f"{metric} {value:.3f} (limit {rule.threshold:.3f})"


def _map_drop(rule: AlertRule, now: dt.datetime, shared: dict):
    value, computed_at, metric = _quality_value(rule.deployment)
    if value is None:
        return False, None, "no quality report yet (review some predictions)"
    memory = rule.memory or {}
    stamp = computed_at.isoformat()
    if memory.get("at") != stamp:
        # A newer report: the one seen before becomes "previous".
        memory = {"previous": memory.get("value"), "value": value, "at": stamp}
        AlertRule.objects.filter(pk=rule.pk).update(memory=memory)
        rule.memory = memory
    previous = memory.get("previous")
    if previous is None:
        return False, value, f"{metric} {value:.3f}, no previous report to compare with"
    drop = previous - value
    return drop >= rule.threshold, drop, (f"{metric} {value:.3f}, down {drop:.3f} from {previous:.3f} "
                                          f"(limit {rule.threshold:.3f})")


def _silence(rule: AlertRule, now: dt.datetime, shared: dict):
    # The newest minute row holding a prediction (the rollups lag ingest by seconds, a minute row is one per minute).
    latest = (StatsRollup.objects.filter(deployment=rule.deployment, bucket=RollupBucket.MINUTE, tag="",
                                         role=ModelRole.CHAMPION, count__gt=0)
              .order_by("-start").values_list("start", flat=True).first())
    since = latest + dt.timedelta(minutes=1) if latest else rule.created_at
    minutes = max(0.0, (now - since).total_seconds() / 60)
    what = "no prediction since " + since.strftime("%Y-%m-%d %H:%M") if latest else "no prediction yet"
    return minutes >= rule.threshold, minutes, f"{what} ({minutes:.0f} min, limit {rule.threshold:g} min)"


EVALUATORS = {AlertKind.LATENCY_P95: _latency, AlertKind.UNDER_THRESHOLD: _under_threshold, AlertKind.DRIFT: _drift,
              AlertKind.MAP_BELOW: _map_below, AlertKind.MAP_DROP: _map_drop, AlertKind.SILENCE: _silence}


def alert_rule_evaluate(*, rule: AlertRule, now: dt.datetime | None = None, shared: dict | None = None) -> str | None:
    """Evaluate one rule; "firing" or "resolved" when its state changed, else None. `shared` holds what the rules
    of one run read alike (a deployment's drift report), so it is computed once per run."""
    now = now or timezone.now()
    firing, value, message = EVALUATORS[rule.kind](rule, now, {} if shared is None else shared)
    current = Alert.objects.filter(rule=rule, status=AlertStatus.FIRING).first()
    if firing and current is None:
        return "firing" if _fire(rule, now, value=value, message=message) else None
    if firing and current is not None:
        Alert.objects.filter(pk=current.pk).update(value=value)
        return None
    if not firing and current is not None:
        return "resolved" if _resolve(rule, now, value=value, why=message) else None
    return None


def alerts_evaluate(*, now: dt.datetime | None = None) -> dict:
    """Evaluate every active rule (the beat, every minute); {"evaluated", "fired", "resolved"}."""
    now = now or timezone.now()
    counts = {"evaluated": 0, "fired": 0, "resolved": 0}
    shared: dict = {}
    for rule in AlertRule.objects.filter(active=True).select_related("deployment"):
        try:
            change = alert_rule_evaluate(rule=rule, now=now, shared=shared)
        except Exception:  # one broken rule (a deleted deployment's rows mid-way) must not stop the others
            logger.exception("alert rule %s could not be evaluated", rule.pk)
            continue
        counts["evaluated"] += 1
        if change:
            counts["fired" if change == "firing" else "resolved"] += 1
    return counts


def _in_cool_down(rule: AlertRule, now: dt.datetime) -> bool:
    """A rule that sent a message within the cool-down sends no new one (a flapping condition is one message)."""
    cool_down = dt.timedelta(seconds=settings.LOUPE_ALERT_COOLDOWN_SECONDS)
    return Alert.objects.filter(rule=rule, notified_at__gt=now - cool_down).exists()


def _fire(rule: AlertRule, now: dt.datetime, *, value, message: str) -> Alert | None:
    notify = NotificationState.NONE
    if rule.webhook_url:
        notify = NotificationState.SUPPRESSED if _in_cool_down(rule, now) else NotificationState.PENDING
    try:
        with transaction.atomic():
            alert = Alert.objects.create(rule=rule, status=AlertStatus.FIRING, started_at=now, value=value,
                                         message=message[:500],
                                         firing_notification=notify)
    except IntegrityError:  # another evaluation opened it first (the one-firing-per-rule constraint)
        return None
    if notify == NotificationState.PENDING:
        _notify_later(alert, "firing")
    return alert


def _resolve(rule: AlertRule, now: dt.datetime, *, value, why: str) -> bool:
    alert = Alert.objects.filter(rule=rule, status=AlertStatus.FIRING).first()
    if alert is None:
        return False
    # The resolved message goes out only where the firing one did (or is on its way).
    notify = NotificationState.NONE
    if rule.webhook_url and alert.firing_notification in (NotificationState.PENDING, NotificationState.SENDING,
                                                          NotificationState.SENT):
        notify = NotificationState.PENDING
    changed = Alert.objects.filter(pk=alert.pk, status=AlertStatus.FIRING).update(
        status=AlertStatus.RESOLVED, resolved_at=now, resolved_notification=notify,
        message=(alert.message + f" — resolved: {why}")[:500])
    if changed and notify == NotificationState.PENDING:
        _notify_later(alert, "resolved")
    return bool(changed)


def _notify_later(alert: Alert, event: str) -> None:
    from monitoring import tasks

    task_send_on_commit(task=tasks.alert_notify, args=[str(alert.pk), event])


# The webhook


def alert_payload(*, alert: Alert, event: str) -> dict:
    rule = alert.rule
    return {
        "event": event, "alert_id": str(alert.pk), "status": alert.status, "message": alert.message,
        "value": alert.value, "started_at": alert.started_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "rule": {"id": str(rule.pk), "kind": rule.kind, "threshold": rule.threshold,
                 "window_minutes": rule.window_minutes},
        "deployment": {"id": str(rule.deployment_id), "name": rule.deployment.name},
    }


class WebhookFailed(Exception):
    """The webhook did not answer 2xx; retried with backoff."""


def alert_notify(*, alert_id, event: str, final_attempt: bool = False) -> str:
    """POST the alert's `event` ("firing" or "resolved") to its rule's webhook, once: the state is claimed
    (pending → sending) so a duplicate task finds it taken; a failure gives it back for the retry."""
    field = f"{event}_notification"
    claimed = Alert.objects.filter(pk=alert_id, **{field: NotificationState.PENDING}).update(
        **{field: NotificationState.SENDING})
    if not claimed:
        return "skipped"
    alert = Alert.objects.select_related("rule__deployment").get(pk=alert_id)
    error = ""
    try:
        answer = requests.post(alert.rule.webhook_url, json=alert_payload(alert=alert, event=event),
                               timeout=settings.LOUPE_ALERT_WEBHOOK_TIMEOUT,
                               headers={"User-Agent": "Loupe-alerts"})
        if answer.status_code >= 300:
            error = f"the webhook answered {answer.status_code}"
    except requests.RequestException as failure:
        error = f"the webhook could not be reached: {failure.__class__.__name__}"
    attempts = alert.notification_attempts + 1
    if not error:
        Alert.objects.filter(pk=alert_id).update(**{field: NotificationState.SENT}, notification_attempts=attempts,
                                                 notification_error="", notified_at=timezone.now())
        return "sent"
    state = NotificationState.FAILED if final_attempt else NotificationState.PENDING
    Alert.objects.filter(pk=alert_id).update(**{field: state}, notification_attempts=attempts,
                                             notification_error=error[:500])
    raise WebhookFailed(error)
