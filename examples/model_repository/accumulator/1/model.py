"""accumulator: SUM = the sum of INPUT over the sequence so far (python backend).

A stateful model: the sequence batcher gives every request its sequence's controls (START,
END, CORRID); the running sums live in this instance, keyed by the correlation id, started
by START and dropped after END. A request of a sequence this instance never saw starting,
or a START for a sequence that has not ended, is an error: a client that sends no sequence
controls (or mixes them up) fails visibly.
"""
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.sums = {}

    def execute(self, requests):
        responses = []
        for request in requests:
            value = pb_utils.get_input_tensor_by_name(request, "INPUT").as_numpy()
            start = pb_utils.get_input_tensor_by_name(request, "START").as_numpy().reshape(-1)
            end = pb_utils.get_input_tensor_by_name(request, "END").as_numpy().reshape(-1)
            corrid = pb_utils.get_input_tensor_by_name(request, "CORRID").as_numpy().reshape(-1)
            sums = np.zeros(value.shape, dtype=np.float32)
            error = None
            for row in range(value.shape[0]):
                key = int(corrid[row])
                if start[row]:
                    if key in self.sums:
                        error = f"sequence {key} started again before its end (no sequence_end seen)"
                        break
                    self.sums[key] = np.zeros(value.shape[1:], dtype=np.float32)
                if key not in self.sums:
                    error = f"sequence {key} was not started (no sequence_start seen)"
                    break
                self.sums[key] = self.sums[key] + value[row]
                sums[row] = self.sums[key]
                if end[row]:
                    del self.sums[key]
            if error:
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(error)))
            else:
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("SUM", sums)]))
        return responses
