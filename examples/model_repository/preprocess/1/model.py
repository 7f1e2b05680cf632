"""preprocess: standardise each input row (python backend), the first stage of `pipeline`."""
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "RAW").as_numpy()
            mean = x.mean(axis=1, keepdims=True)
            std = x.std(axis=1, keepdims=True) + 1e-6
            normed = ((x - mean) / std).astype(np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("NORMED", normed)]))
        return responses
