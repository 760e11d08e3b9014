"""The steps of one epoch, fed either by a Python loop over the loader or through MindSpore's data sink.

In the sink the loader feeds a device queue from its own threads and the compiled step reads its batch from
that queue, so no batch passes through Python. MindSpore has a sink on Ascend and GPU only (``data_sink``
refuses other targets, and ``Model.train`` runs its Python loop there instead). Both feeds yield one step's
outputs at a time, so the progress bar, the log lines, the loss checks, checkpoints and resume are the same."""
import logging

import mindspore as ms

__all__ = ["SINK_DEVICES", "step_outputs", "uses_data_sink"]

_logger = logging.getLogger(__name__)
SINK_DEVICES = ("Ascend", "GPU")


def uses_data_sink(requested):
    """Whether an epoch runs through the data sink: when requested and the context's device has one."""
    device_target = ms.get_context("device_target")
    if requested and device_target not in SINK_DEVICES:
        _logger.info("dataset_sink_mode: MindSpore has no data sink on %s; the epoch runs as a Python loop over "
                     "the loader.", device_target)
    return bool(requested) and device_target in SINK_DEVICES


def step_outputs(train_step, loader, sink):
    """Yield ``train_step``'s outputs for each batch of ``loader`` (one epoch), fed through the data sink when
    ``sink``."""
    if not sink:
        for batch in loader.create_tuple_iterator(num_epochs=1):
            yield train_step(*batch)
        return
    sunk_step = ms.data_sink(train_step, loader, sink_size=1, jit_config=ms.JitConfig())
    for _ in range(loader.get_dataset_size()):
        yield sunk_step()
