"""matmul: each request's 512-vector scales the rows of a fixed 512x512 matrix, which is then
multiplied by two more (python backend).

Two full 512x512 products per request make one inference take several ms on a CPU, which
is what a search has to cope with on a real model: few points per second, a latency budget
reached at low concurrency. Every request costs the same whether it comes alone or in a
dynamic batch, so batching saves only the per-call overhead, unlike mlp.
"""
import numpy as np
import triton_python_backend_utils as pb_utils

SIZE = 512
OUTPUTS = 16


class TritonPythonModel:
    def initialize(self, args):
        rng = np.random.default_rng(0)
        self.weights = [(rng.standard_normal((SIZE, SIZE)) / np.sqrt(SIZE)).astype(np.float32) for _ in range(3)]

    def execute(self, requests):
        responses = []
        for request in requests:
            rows = pb_utils.get_input_tensor_by_name(request, "INPUT").as_numpy()
            out = np.empty((rows.shape[0], OUTPUTS), dtype=np.float32)
            for i, x in enumerate(rows):
                m = x[:, None] * self.weights[0]
                for w in self.weights[1:]:
                    m = m @ w
                out[i] = m[:OUTPUTS].sum(axis=1)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT", out)]))
        return responses
