"""The machine-readable per-epoch CSV of a training run (``tools/plot_log.py`` draws it)."""
import csv
import os

__all__ = ["EpochLog", "TRAIN_LOG_FIELDS"]

TRAIN_LOG_FIELDS = ("epoch", "step", "lr", "train_loss", "val_top1", "val_top5", "val_loss", "epoch_time_s",
                    "images_per_s", "skipped_steps")


class EpochLog:
    """``train_log.csv``: one row per finished epoch. Resuming from epoch E drops rows after E, so the
    file always describes the run that produced the current weights."""

    def __init__(self, path, resume_epoch=0):
        self.path = path
        rows = self.read(path) if os.path.isfile(path) else []
        kept = [row for row in rows if int(row["epoch"]) <= resume_epoch]
        if len(kept) != len(rows) or not rows:
            self._write(kept)

    def best(self, field):
        """The highest value of ``field`` in the rows so far (-inf when none has one)."""
        return max((float(row[field]) for row in self.read(self.path) if row[field] != ""), default=float("-inf"))

    @staticmethod
    def read(path):
        with open(path, newline="") as f:
            return list(csv.DictReader(f))

    def _write(self, rows):
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=TRAIN_LOG_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)

    def append(self, **values):
        row = {field: _format(values.get(field, "")) for field in TRAIN_LOG_FIELDS}
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=TRAIN_LOG_FIELDS).writerow(row)
            f.flush()
            os.fsync(f.fileno())


def _format(value):
    return f"{value:.6g}" if isinstance(value, float) else value
