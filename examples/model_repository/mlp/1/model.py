"""mlp: a 256 -> 2048 -> 2048 -> 16 ReLU network with fixed random weights (python backend).

All requests in a dynamic batch are stacked and pushed through the layers as one matrix
product, which is what makes batching pay off, as it does for real models.
"""
import numpy as np
import triton_python_backend_utils as pb_utils

LAYERS = (256, 2048, 2048, 16)


class TritonPythonModel:
    def initialize(self, args):
        rng = np.random.default_rng(0)
        self.weights = [
            (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
            for n_in, n_out in zip(LAYERS[:-1], LAYERS[1:])
        ]

    def execute(self, requests):
        inputs = [pb_utils.get_input_tensor_by_name(r, "INPUT").as_numpy() for r in requests]
        sizes = [x.shape[0] for x in inputs]
        x = np.concatenate(inputs, axis=0)
        for i, w in enumerate(self.weights):
            x = x @ w
            if i < len(self.weights) - 1:
                np.maximum(x, 0.0, out=x)
        responses, start = [], 0
        for size in sizes:
            out = x[start : start + size]
            start += size
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT", out)]))
        return responses
