"""ModelCard services behind /opsml/models/*: metadata, metrics, comparisons, registration.

These are the routes the reference 2.x server offers to opsml-cli and to CI pipelines rather
than to the Python client. They read what the cards already recorded (the card rows, the
metrics table, the stored model-metadata.json) and never load pickled cards, so a comparison
costs a few queries rather than a card download.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.db.tables import ModelCardRecord
from app.errors import InvalidRequestError, NotFoundError
from app.services import metrics
from app.services.cards import CardQuery, CardService
from app.storage.delete_scope import SERVING_FOLDER
from app.storage.paths import OPSML_ROOT
from app.storage.store import ArtifactStore

METADATA_LIMIT = 16 * 1024 * 1024
# Where registered models go, beside the card tables (the reference's opsml_registry_path).
REGISTRY_DIR = SERVING_FOLDER  # the reference's folder for served models
MODEL_SETTINGS = "model-settings.json"

ERR_NO_SELECTOR = (
    "Send a uid, or a name (with an optional repository and version), to choose the model"
)
ERR_NO_MODEL = "No model card matches the request"
ERR_MANY_MODELS = "More than one model card matches; send its uid, or a name and a version"
ERR_BAD_METADATA = "The model's model-metadata.json is not valid JSON"
ERR_NO_RUN = "Model card {name} {version} is not associated with a run (no runcard_uid)"
ERR_NO_METRIC = "Run {run_uid} has no metric named {metric}"
ERR_LOWER_IS_BETTER = (
    "lower_is_better must be one boolean, or one per metric_name ({count} names, {given} given)"
)
ERR_NO_ONNX = "Model card {name} {version} has no ONNX model; send onnx=false to register it"


@dataclass(frozen=True)
class ModelSelector:
    uid: str | None = None
    name: str | None = None
    repository: str | None = None
    version: str | None = None
    ignore_release_candidates: bool = False


class ModelService:
    def __init__(
        self, cards: CardService, sessions: sessionmaker[Session], store: ArtifactStore
    ) -> None:
        self._cards = cards
        self._sessions = sessions
        self._store = store

    def find(self, selector: ModelSelector, *, unique: bool = False) -> dict[str, Any]:
        """The highest matching ModelCard record (or the only one, with `unique`)."""
        if not selector.uid and not selector.name:
            raise InvalidRequestError(ERR_NO_SELECTOR)
        found = self._cards.list_cards(
            "model",
            CardQuery(
                uid=selector.uid,
                name=selector.name,
                repository=selector.repository,
                version=selector.version,
                ignore_release_candidates=selector.ignore_release_candidates,
            ),
        )
        if not found:
            raise NotFoundError(ERR_NO_MODEL)
        if unique and len(found) > 1:
            raise InvalidRequestError(ERR_MANY_MODELS)
        return found[0]

    def metadata(self, card: dict[str, Any]) -> Any:
        try:
            data = self._store.read_bytes(f"{_card_dir(card)}/model-metadata.json", METADATA_LIMIT)
            return json.loads(data)
        except ValueError as exc:
            raise NotFoundError(ERR_BAD_METADATA) from exc

    def run_metrics(self, card: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """The metrics of the run the model was trained in, grouped by name in logged order."""
        grouped: dict[str, list[dict[str, Any]]] = {}
        for row in metrics.run_metric_rows(self._sessions, _run_uid(card), None):
            grouped.setdefault(row["name"], []).append(_metric(row))
        return grouped

    def compare(
        self,
        challenger_uid: str,
        champion_uids: list[str],
        metric_names: list[str],
        lower_is_better: bool | list[bool],
    ) -> dict[str, Any]:
        """The reference's ModelChallenger against named champions: per metric, one battle
        per champion on the first value each run logged under that name."""
        flags = _broadcast(lower_is_better, len(metric_names))
        challenger = self.find(ModelSelector(uid=challenger_uid))
        champions = [self.find(ModelSelector(uid=uid)) for uid in champion_uids]
        report: dict[str, list[dict[str, Any]]] = {}
        for name, lower in zip(metric_names, flags, strict=True):
            ours = self._first_metric(challenger, name)
            report[name] = []
            for champion in champions:
                theirs = self._first_metric(champion, name)
                win = ours["value"] < theirs["value"] if lower else ours["value"] > theirs["value"]
                report[name].append(
                    {
                        "champion_name": champion["name"],
                        "champion_version": champion["version"],
                        "champion_metric": theirs,
                        "challenger_metric": ours,
                        "challenger_win": win,
                    }
                )
        return {
            "challenger_name": challenger["name"],
            "challenger_version": challenger["version"],
            "report": report,
        }

    def register(self, card: dict[str, Any], requested_version: str, onnx: bool) -> str:
        """Copy the model file to `model_registry/<repo>/<name>/v<requested_version>/` with a
        Seldon model-settings.json, replacing what was registered there; returns that folder
        as a storage URI."""
        metadata = self.metadata(card)
        source = metadata.get("onnx_uri") if onnx else metadata.get("model_uri")
        if not isinstance(source, str) or not source:
            raise NotFoundError(ERR_NO_ONNX.format(name=card["name"], version=card["version"]))
        target = (
            f"{OPSML_ROOT}/{REGISTRY_DIR}/{card['repository']}/{card['name']}/v{requested_version}"
        )
        file_name = source.rstrip("/").rpartition("/")[2]
        self._store.delete(target)
        self._copy(source, f"{target}/{file_name}")
        settings = _model_settings(metadata, card, file_name)
        self._write(f"{target}/{MODEL_SETTINGS}", json.dumps(settings).encode())
        return self._store.storage_uri(target)

    def _first_metric(self, card: dict[str, Any], name: str) -> dict[str, Any]:
        run_uid = _run_uid(card)
        rows = metrics.run_metric_rows(self._sessions, run_uid, [name])
        if not rows:
            raise NotFoundError(ERR_NO_METRIC.format(run_uid=run_uid, metric=name))
        return _metric(rows[0])

    def _copy(self, source: str, target: str) -> None:
        writer = self._store.writer(target)
        chunks, _ = self._store.stream(source)
        try:
            writer.open()
            for chunk in chunks:
                writer.write([memoryview(chunk)])
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        finally:
            chunks.close()

    def _write(self, target: str, data: bytes) -> None:
        writer = self._store.writer(target)
        writer.open()
        writer.write([memoryview(data)])
        writer.commit()


def _card_dir(card: dict[str, Any]) -> str:
    return (
        f"{OPSML_ROOT}/{ModelCardRecord.__tablename__}/{card['repository']}/{card['name']}"
        f"/v{card['version']}"
    )


def _run_uid(card: dict[str, Any]) -> str:
    run_uid = card.get("runcard_uid")
    if not run_uid:
        raise InvalidRequestError(ERR_NO_RUN.format(name=card["name"], version=card["version"]))
    return str(run_uid)


def _metric(row: dict[str, Any]) -> dict[str, Any]:
    """The client's Metric model: name, value, step, timestamp."""
    return {key: row.get(key) for key in ("name", "value", "step", "timestamp")}


def _broadcast(lower_is_better: bool | list[bool], count: int) -> list[bool]:
    if isinstance(lower_is_better, bool):
        return [lower_is_better] * count
    if len(lower_is_better) == 1:
        return lower_is_better * count
    if len(lower_is_better) != count:
        raise InvalidRequestError(
            ERR_LOWER_IS_BETTER.format(count=count, given=len(lower_is_better))
        )
    return lower_is_better


def _model_settings(metadata: dict[str, Any], card: dict[str, Any], file_name: str) -> Any:
    # Seldon's custom server wants names without dashes, as the reference writes them.
    name = str(metadata.get("model_name") or card["name"]).replace("-", "_")
    return {
        "name": name,
        "implementation": "models.OnnxModel",
        "parameters": {
            "uri": f"./{file_name}",
            "extra": {
                "model_version": metadata.get("model_version") or card["version"],
                "opsml_name": name,
                "repository": str(metadata.get("model_repository") or card["repository"]).replace(
                    "-", "_"
                ),
            },
        },
    }
