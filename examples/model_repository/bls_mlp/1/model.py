"""bls_mlp: scales its input, then calls the model `mlp` by name (Business Logic Scripting).

The call names "mlp", not a variant: whatever config of mlp the server has loaded under
that name serves it. That is why tsweep loads a BLS model's composing variants under their
own names (docs/ensembles-and-bls.md).
"""
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "RAW").as_numpy()
            scaled = (x / (np.abs(x).max() + 1e-6)).astype(np.float32)
            call = pb_utils.InferenceRequest(
                model_name="mlp", requested_output_names=["OUTPUT"], inputs=[pb_utils.Tensor("INPUT", scaled)]
            )
            answer = call.exec()
            if answer.has_error():
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(answer.error().message())))
                continue
            out = pb_utils.get_output_tensor_by_name(answer, "OUTPUT").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT", out)]))
        return responses
