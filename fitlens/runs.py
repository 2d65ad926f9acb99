"""A run and a study as the client holds them: their state, their data as pandas and numpy,
and following them until they end."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fitlens.follow import FINISHED, follow_run, follow_study
from fitlens.http import Http, number

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

CURVE_POINTS = 100_000  # at most this many points per key by /curves, else the CSV export
# A key ending so counts its steps in batches, not epochs (the API's rule; fitlens's trainer
# logs "train_loss_batch").
PER_BATCH_SUFFIX = "_batch"


class Run:
    def __init__(self, client: Http, data: dict[str, Any]) -> None:
        self.client = client
        self.data = data

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.name!r} {self.status}>"

    @property
    def id(self) -> int:
        return int(self.data["id"])

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def diagnosis(self) -> dict[str, Any] | None:
        """What the curves say (verdict, best epoch, onset, gap...), as of the last refresh."""
        return self.data.get("diagnosis")

    def refresh(self) -> Run:
        self.data = self.client.call("GET", f"/runs/{self.id}")
        return self

    def summary(self) -> dict[str, Any]:
        d = self.diagnosis or {}
        return {
            "id": self.id,
            "name": self.name,
            "project": self.data["project"],
            "status": self.status,
            "epoch": self.data["progress"]["epoch"],
            "epochs": self.data["progress"]["epochs"],
            "verdict": d.get("verdict"),
            "best_epoch": d.get("best_epoch"),
            "min_val_loss": number(d.get("min_val_loss")),
            "onset_epoch": d.get("onset_epoch"),
            "final_gap": number(d.get("final_gap")),
            "val_accuracy": number((d.get("at_evaluated") or {}).get("val_accuracy")),
            "created_by": self.data.get("created_by"),
            "created_at": self.data["created_at"],
            "source": self.data.get("source", "worker"),
        }

    # ---- reads ----

    def curves(self, keys: list[str] | str | None = None) -> pd.DataFrame:
        """Every point at full resolution: one row per step, one column per key; NaN and
        infinities as floats. Without ``keys``, every per-epoch key: a per-batch curve
        (``train_loss_batch``) counts batches, so it comes only when asked for by name."""
        import pandas as pd

        wanted = [keys] if isinstance(keys, str) else keys
        data = self.client.get(
            f"/runs/{self.id}/curves",
            keys=",".join(wanted) if wanted else None,
            max_points=CURVE_POINTS,
        )
        series = [s for s in data["series"] if wanted or not s["key"].endswith(PER_BATCH_SUFFIX)]
        if any(s["downsampled"] for s in series):
            return self._curves_from_csv(wanted)
        columns = {
            s["key"]: pd.Series([number(v) for v in s["values"]], index=s["steps"], dtype=float)
            for s in series
        }
        frame = pd.DataFrame(columns)
        frame.index.name = "step"
        return frame.sort_index()

    def _curves_from_csv(self, keys: list[str] | None) -> pd.DataFrame:
        import pandas as pd

        long = pd.read_csv(io.StringIO(self.client.get(f"/runs/{self.id}/metrics.csv")))
        kept = long["key"].isin(keys) if keys else ~long["key"].str.endswith(PER_BATCH_SUFFIX)
        long = long[kept]
        frame = long.pivot(index="step", columns="key", values="value").astype(float)
        frame.columns.name = None
        return frame

    def histograms(
        self, param: str, shared_bins: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``edges, counts, steps`` of one parameter: edges (steps x bins+1, or bins+1 with
        ``shared_bins``), counts (steps x bins), steps."""
        import numpy as np

        data = self.client.get(f"/runs/{self.id}/histograms", param=param, shared_bins=shared_bins)
        steps = np.array([s["step"] for s in data["steps"]], dtype=np.int64)
        counts = np.array([s["counts"] for s in data["steps"]], dtype=float)
        edges = np.array([s["edges"] for s in data["steps"]], dtype=float)
        return (edges[0] if shared_bins and len(edges) else edges), counts, steps

    def snapshots(self) -> list[dict[str, Any]]:
        """Every weight snapshot: param, epoch, shape, dtype, why kept, method."""
        return list(self.client.get(f"/runs/{self.id}/weights")["snapshots"])

    def weights(self, param: str, epoch: int, diff_from: int | None = None) -> np.ndarray:
        """A weight tensor at ``epoch`` as kept (whole, or pooled: see ``snapshots()``), or its
        change since ``diff_from``."""
        import numpy as np

        data = self.client.get(
            f"/runs/{self.id}/weights", param=param, epoch=epoch, diff_from=diff_from
        )
        return np.array(data["values"], dtype=np.float32).reshape(data["shape"])

    def weight_images(
        self, param: str, epoch: int, input_shape: Sequence[int] | None = None
    ) -> tuple[np.ndarray, list[int], str]:
        """``images`` (tiles x height x width), each tile's unit, class or filter index, and
        the kind ("units", "classes" or "filters"). ``input_shape`` (channels, height, width)
        for a run logged from your own loop, whose spec the server does not know."""
        import numpy as np

        shape = ",".join(map(str, input_shape)) if input_shape else None
        data = self.client.get(
            f"/runs/{self.id}/weights/images", param=param, epoch=epoch, input_shape=shape
        )
        images = np.array([t["values"] for t in data["tiles"]], dtype=np.float32)
        return images, [t["index"] for t in data["tiles"]], str(data["kind"])

    def checkpoints(self) -> list[dict[str, Any]]:
        """The run's kept state_dicts: name (best, last), epoch, why, size, SHA-256."""
        return list(self.client.get(f"/runs/{self.id}/checkpoints")["checkpoints"])

    def load_state_dict(self, name: str = "best") -> dict[str, Any]:
        """A checkpoint, checked against its SHA-256, ready for ``model.load_state_dict``
        (needs torch; loaded with ``weights_only=True``: tensors, no code)."""
        import hashlib

        import torch

        data, headers = self.client.download(f"/runs/{self.id}/checkpoints/{name}")
        expected = headers.get("x-checkpoint-sha256")
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise ValueError(f"checkpoint {name!r} of run {self.id} arrived damaged")
        return dict(torch.load(io.BytesIO(data), weights_only=True))

    def histogram_params(self) -> dict[str, list[int]]:
        return dict(self.client.get(f"/runs/{self.id}/histograms")["params"])

    def evaluation(self) -> dict[str, Any]:
        return dict(self.client.get(f"/runs/{self.id}/evaluation")["evaluation"])

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        return list(self.client.get(f"/runs/{self.id}/events", kind=kind))

    def export(self, path: str | Path, format: str = "csv") -> Path:
        """Every point (key, step, value, wall_time) as CSV, or as Parquet (needs pyarrow),
        streamed: memory stays flat whatever the run's length. NaN and +-Infinity stay the
        values they were (not nulls)."""
        path = Path(path)
        url = f"/runs/{self.id}/metrics.csv"
        if format == "csv":
            return self.client.save(url, path)
        if format != "parquet":
            raise ValueError(f"format must be csv or parquet, not {format!r}")
        with tempfile.TemporaryDirectory(prefix="fitlens-export-") as tmp:
            csv_path = self.client.save(url, Path(tmp) / "metrics.csv")
            _csv_to_parquet(csv_path, path)
        return path

    # ---- actions ----

    def cancel(self) -> Run:
        self.data = self.client.call("POST", f"/runs/{self.id}/cancel")
        return self

    def retry(self) -> Run:
        self.data = self.client.call("POST", f"/runs/{self.id}/retry")
        return self

    def wait(self, progress: bool = False, timeout: float | None = None) -> Run:
        """Until the run ends (following its stream; polling with ETags where there is none);
        ``progress`` draws a bar: epoch i/N, the losses, the gap, the ETA."""
        follow_run(self, progress, timeout)
        return self.refresh()


class Study:
    def __init__(self, client: Http, data: dict[str, Any]) -> None:
        self.client = client
        self.data = data

    def __repr__(self) -> str:
        return f"<Study {self.id} {self.data['name']!r} {self.data['status']}>"

    @property
    def id(self) -> int:
        return int(self.data["id"])

    @property
    def done(self) -> bool:
        return bool(self.data["done"])

    def refresh(self) -> Study:
        self.data = self.client.call("GET", f"/studies/{self.id}")
        return self

    def runs(self) -> list[Run]:
        return list_runs(self.client, limit=100_000, study=self.id)

    def table(self) -> pd.DataFrame:
        """One row per configuration: its name, members, and every summary value's mean and
        std (columns ``<value>_mean``, ``<value>_std``)."""
        import pandas as pd

        rows = []
        for row in self.client.get(f"/studies/{self.id}/table")["rows"]:
            out: dict[str, Any] = {"config": row["config"], "name": row["name"]}
            out["members"] = row["members"]
            for key, stat in row["values"].items():
                out[f"{key}_mean"] = number(stat["mean"])
                out[f"{key}_std"] = number(stat["std"])
            rows.append(out)
        return pd.DataFrame(rows).set_index("config")

    def cancel(self) -> Study:
        self.data = self.client.call("POST", f"/studies/{self.id}/cancel")
        return self

    def retry(self) -> Study:
        self.client.call("POST", f"/studies/{self.id}/retry")
        return self.refresh()

    def wait(self, progress: bool = False, timeout: float | None = None) -> Study:
        follow_study(self, progress, timeout)
        return self.refresh()


def list_runs(client: Http, limit: int = 100, **filters: Any) -> list[Run]:
    """Runs as objects: the API's filters and ``sort``; follows the cursor up to ``limit``."""
    out: list[Run] = []
    cursor = None
    while len(out) < limit:
        page = client.get("/runs", limit=min(500, limit - len(out)), cursor=cursor, **filters)
        out += [Run(client, r) for r in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return out


def _csv_to_parquet(source: Path, target: Path) -> None:
    """The export's CSV into Parquet, a batch of rows at a time (pyarrow's streaming reader;
    "nan", "inf" and "-inf" are numbers here, as the API writes them, never nulls)."""
    import pyarrow as pa
    from pyarrow import csv
    from pyarrow import parquet as pq

    types = {"key": pa.string(), "step": pa.int64(), "value": pa.float64()}
    types["wall_time"] = pa.float64()
    reader = csv.open_csv(
        source, convert_options=csv.ConvertOptions(column_types=types, null_values=[])
    )
    with pq.ParquetWriter(target, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
