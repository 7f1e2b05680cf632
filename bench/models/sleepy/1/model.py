"""sleepy: each execution waits ``sleep_ms`` (the config's parameter), then doubles its input.

The wait stands for a model whose time goes to something other than this host's CPU (a
remote call, a device, disk), so a server measuring it leaves the cores nearly idle: the
scale-out bench (bench/scaleout.py) runs two lanes on a 2-core machine and still sees them
overlap. One wait per execution, whatever the batch: dynamic batching and more instances
pay off, so the search has a real answer to find.
"""
import json
import time

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        parameters = json.loads(args["model_config"]).get("parameters", {})
        self.wait_s = float(parameters.get("sleep_ms", {}).get("string_value", "20")) / 1000.0

    def execute(self, requests):
        time.sleep(self.wait_s)
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT", x * 2)]))
        return responses
