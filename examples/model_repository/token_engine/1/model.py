"""token_engine: a stand-in for a generative backend (vLLM, TensorRT-LLM) on the python backend.

It behaves like a continuous-batching engine, so that streaming load, time to first token and
inter-token latency can be measured against figures known in advance:

* one engine thread per instance holds up to ``max_num_seqs`` active sequences (read from
  ``model.json`` in the version folder, where the vLLM backend reads its engine settings); a
  request that arrives while they are all taken waits (admission in arrival order);
* admitting a sequence costs its prefill: ``prefill_base_ms + prefill_per_token_ms x prompt
  tokens`` (the prompt's whitespace-separated words are its tokens);
* every decode step costs ``decode_base_ms + decode_per_sequence_ms x active sequences`` and
  gives each active sequence one token, sent at once as its own response; a sequence's last
  token (``max_tokens``, else ``default_max_tokens``) carries the final flag.

So with one sequence at a time, time to first token = prefill + one step and every gap between
tokens = decode_base_ms + decode_per_sequence_ms. Time passes in sleeps: the model costs little
CPU however slow it is set. A prompt containing ``<stall>`` gets its first token and then
nothing for ``stall_s`` seconds (a stuck stream, for testing a client's timeout).

The model is decoupled (model_transaction_policy decoupled: true): ``execute`` only queues the
requests; responses go out through each request's response sender from the engine thread.
"""
import json
import os
import threading
import time
from collections import deque

import numpy as np
import triton_python_backend_utils as pb_utils

STALL_MARKER = "<stall>"


class Sequence:
    """One request being generated: its sender, how many tokens it wants and has got."""

    def __init__(self, sender, prompt_tokens, max_tokens, stall):
        self.sender, self.prompt_tokens, self.max_tokens, self.stall = sender, prompt_tokens, max_tokens, stall
        self.emitted = 0
        self.stalled_until = 0.0


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        engine_file = os.path.join(args["model_repository"], args["model_version"], "model.json")
        with open(engine_file) as f:
            self.max_active = max(1, int(json.load(f).get("max_num_seqs", 4)))
        self.prefill_base = float(params.get("prefill_base_ms", "4")) / 1e3
        self.prefill_per_token = float(params.get("prefill_per_token_ms", "0.05")) / 1e3
        self.decode_base = float(params.get("decode_base_ms", "3")) / 1e3
        self.decode_per_sequence = float(params.get("decode_per_sequence_ms", "0.5")) / 1e3
        self.default_max_tokens = max(1, int(params.get("default_max_tokens", "16")))
        self.stall_s = float(params.get("stall_s", "30"))
        self.waiting = deque()
        self.active = []
        self.cv = threading.Condition()
        self.stopping = False
        self.engine = threading.Thread(target=self._run, name="token_engine", daemon=True)
        self.engine.start()

    def execute(self, requests):
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "text_input").as_numpy().reshape(-1)
            prompt = text[0].decode("utf-8", "replace") if isinstance(text[0], bytes) else str(text[0])
            asked = pb_utils.get_input_tensor_by_name(request, "max_tokens")
            max_tokens = int(asked.as_numpy().reshape(-1)[0]) if asked is not None else self.default_max_tokens
            sequence = Sequence(request.get_response_sender(), len(prompt.split()), max(1, max_tokens), STALL_MARKER in prompt)
            with self.cv:
                self.waiting.append(sequence)
                self.cv.notify()
        return None

    def _run(self):
        """The engine loop: admit (prefill) while there is room, then one decode step."""
        while True:
            with self.cv:
                while not self.stopping and not self.waiting and not self.active:
                    self.cv.wait()
                if self.stopping:
                    break
                admitted = []
                while self.waiting and len(self.active) + len(admitted) < self.max_active:
                    admitted.append(self.waiting.popleft())
            for sequence in admitted:  # prefill, one sequence after another
                time.sleep(self.prefill_base + self.prefill_per_token * sequence.prompt_tokens)
            self.active.extend(admitted)
            now = time.monotonic()
            stepping = [s for s in self.active if s.stalled_until <= now]
            if not stepping:  # only stalled sequences: wait for the first to wake
                time.sleep(max(0.0, min(s.stalled_until for s in self.active) - now))
                continue
            time.sleep(self.decode_base + self.decode_per_sequence * len(self.active))
            for sequence in stepping:
                self._emit(sequence)
            self.active = [s for s in self.active if s.emitted < s.max_tokens]
        for sequence in list(self.waiting) + self.active:  # unloading: end every open stream
            self._send(sequence, None, final=True)

    def _emit(self, sequence):
        sequence.emitted += 1
        final = sequence.emitted >= sequence.max_tokens
        self._send(sequence, f"tok{sequence.emitted} ", final)
        if sequence.stall and sequence.emitted == 1 and not final:
            sequence.stalled_until = time.monotonic() + self.stall_s

    def _send(self, sequence, text, final):
        flags = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL if final else 0
        response = None
        if text is not None:
            response = pb_utils.InferenceResponse([pb_utils.Tensor("text_output", np.array([text.encode()], dtype=np.object_))])
        try:
            sequence.sender.send(response, flags=flags)
        except Exception:  # the client went away: its stream is over either way
            sequence.emitted = sequence.max_tokens

    def finalize(self):
        with self.cv:
            self.stopping = True
            self.cv.notify()
        self.engine.join(timeout=5)
