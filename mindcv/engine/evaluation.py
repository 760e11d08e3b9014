"""Top-1 / top-5 accuracy and loss of a classifier over a dataset."""
import numpy as np
from tqdm import tqdm

__all__ = ["evaluate"]


def evaluate(network, loader, loss_fn=None, progress=True, desc="validate", interrupted=None):
    """Accuracy (in %) and mean loss of ``network`` on ``loader`` batches of (images, class ids). ``interrupted``,
    if given, is asked before each batch; when it answers true, evaluation ends and returns None."""
    network.set_train(False)
    totals = np.zeros(4, np.float64)  # correct@1, correct@5, summed loss, samples
    batches = loader.get_dataset_size()
    for images, labels in tqdm(loader.create_tuple_iterator(num_epochs=1), total=batches, desc=desc,
                               disable=not progress, leave=False):
        if interrupted is not None and interrupted():
            return None
        logits = network(images)
        scores, targets = logits.asnumpy(), labels.asnumpy().astype(np.int64)
        top5 = np.argsort(-scores, axis=1)[:, :5]
        totals[0] += (top5[:, 0] == targets).sum()
        totals[1] += (top5 == targets[:, None]).any(axis=1).sum()
        if loss_fn is not None:
            totals[2] += float(loss_fn(logits, labels).asnumpy()) * len(targets)
        totals[3] += len(targets)
    samples = max(totals[3], 1)
    return {"top1": 100 * totals[0] / samples, "top5": 100 * totals[1] / samples,
            "loss": totals[2] / samples if loss_fn is not None else float("nan"), "samples": int(totals[3])}
