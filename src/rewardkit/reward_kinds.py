"""The built-in reward kinds: one :func:`rewardkit.registry.register` call per kind, each
naming the module that builds it (imported only when a spec of that kind is loaded), its card
and its options. Imported by :mod:`rewardkit.registry`, so every kind is known once it is."""

from __future__ import annotations

from rewardkit.registry import register

# Shared tails of the ``arg_help`` texts ``rewardkit rewards list`` prints.
_ENGINE = (
    "plus the engine options (dtype, device, threads, token_budget, max_length, truncation, "
    "cache_dir, layout, …; docs/reward-specs.md)"
)
_HTTP_JUDGE = (
    "api_key_env=, endpoint=chat|completions, temperature=, max_tokens=, seed=, logprobs=, "
    "unparsed=nan|tie, prices=, base_url=, model=, api_key_header=, api_version=, query= and "
    "headers= (mappings, in a spec file), cache_dir=, progress= and the request limits "
    "(docs/judges.md)"
)
#: The judge options both forms read (the endpoint applies its own model's chat template, so
#: ``use_chat_template=`` is the local form's only).
_JUDGE_TEXT = "template=, system=, principle=, rubric="
_LIMITS = (
    "plus the request limits (concurrency=, rpm=, tpm=, timeout=, connect_timeout=, retries=, "
    "backoff=, …; docs/remote.md)"
)

register(
    "classifier",
    "rewardkit.rewards.classifier:build",
    "Sequence-classification reward model (any AutoModelForSequenceClassification); "
    "uses the model's chat template when it has one.",
    card="A1 — Bradley–Terry reward model (scoring side)",
    arg_help="PATH_OR_ID (a local directory, a Hub id, or 'smollm2'/'minilm' for the embedded models); options family=, use_chat_template=, head_seed=, num_labels=, objectives=, reduce=weighted|gating, weights=, trust_remote_code=, base= (the base folder of a LoRA/PEFT adapter folder), temperature= and template= (pairwise families), "
    + _ENGINE,
    uses_engine=True,
)
register(
    "default",
    "rewardkit.rewards.default_rm:build",
    "The shipped default reward model: embedded all-MiniLM-L6-v2 (frozen) with a small trained "
    "head (BT on HH-RLHF helpful-base, MIT); works offline.",
    card="A1 — Bradley–Terry reward model; A14 — two-layer reward head",
    arg_help="(none) for the shipped head, or DIR of a head trained with freeze_backbone: true; options: only the engine options (dtype, device, threads, …; docs/reward-specs.md)",
    uses_engine=True,
)
register(
    "judge",
    "rewardkit.rewards.judges.build:judge",
    "Generative pointwise judge: P(Yes) vs P(No) as the next token after a fixed judging prompt.",
    card="B3 — Generative yes-token reward (RewardDance)",
    arg_help="'default' (embedded SmolLM2-135M-Instruct), PATH_OR_ID of a causal LM, or openai://HOST:PORT/v1?model=NAME (an OpenAI-compatible endpoint; docs/judges.md); options output=prob|logit, use_chat_template=, "
    + _JUDGE_TEXT
    + ", "
    + _ENGINE,
    uses_engine=True,
    endpoint_help=f"output=prob|logit, {_JUDGE_TEXT}, {_HTTP_JUDGE}",
)
register(
    "rule",
    "rewardkit.rewards.rules:build",
    "Rule rewards without a model (NaN where a rule does not apply, never 0).",
    card=None,
    arg_help="NAME; options: each rule's own, listed under it (docs/rules.md)",
)
register(
    "ensemble",
    "rewardkit.rewards.composite.ensemble:build",
    "Ensemble of any rewards (nested specs): each member scored once, then aggregated "
    "NaN-aware; per-member scores and disagreement are kept.",
    card="C5 — Reward-model ensembles (Helping or Herding?)",
    arg_help='{"ensemble": [SPEC, ...], "aggregate": NAME, "lam": 1.0}; options weights, '
    "normalize (none|zscore), stats, name (docs/composition.md)",
    composite=True,
)
register(
    "weighted",
    "rewardkit.rewards.composite.ensemble:build_weighted",
    "Weighted sum of rewards, e.g. a rule plus a model (NaN members dropped, the other "
    "weights rescaled to the same total).",
    card="C10 — Hybrid rule + model rewards (Beyond Monolithic Rewards)",
    arg_help='{"weighted": {SPEC: WEIGHT, ...}}; options normalize (none|zscore), stats, name',
    composite=True,
)
register(
    "route",
    "rewardkit.rewards.composite.route:build",
    "Route each query to the reward of its data source (query.meta['data_source']; NaN or "
    "'default' for other sources), as in Mixed-R1 and MedGRPO multi-task RL.",
    card="C3 — Cross-dataset normalization (MedGRPO multi-task routing)",
    arg_help='{"route": {SOURCE: SPEC, ...}, "default": SPEC, "key": "data_source"}; options '
    "missing (nan|error), name",
    composite=True,
)
register(
    "confidence",
    "rewardkit.rewards.composite.confidence:build",
    "A reward trusted less where it is likely wrong: r·c(x) (or c·r + (1−c)·baseline) with "
    "c = exp(−scale·s), s the mean kNN cosine distance of the query's embedding to the reward "
    "model's training data, or an ensemble's member std.",
    card="F7 — Confidence-weighted reward (PrefPaint)",
    arg_help='{"confidence": SPEC, "reference": FILE_OR_NPY, "k": 10, "scale": 1.0}; options '
    "source (knn|ensemble), mode (multiply|shrink), baseline, text (turn|full|response), "
    "encoder, name (docs/composition.md)",
    composite=True,
)
register(
    "dpo",
    "rewardkit.rewards.dpo:build",
    "DPO implicit reward β[log π(y|x) − log π_ref(y|x)] over the response tokens; without 'ref', "
    "reference-free sum / mean / norm (default norm, as reward-bench).",
    card="B1 — DPO implicit reward",
    arg_help="POLICY ('default' = embedded SmolLM2-135M-Instruct, or PATH_OR_ID); options ref= (a LoRA/PEFT adapter policy: default its base; ref=free: none), beta=, reduce=sum|mean|norm, use_chat_template=, ref_chat_template=, system=, base= (the base folder of LoRA/PEFT adapters), "
    + _ENGINE,
    uses_engine=True,
)
register(
    "density-ratio",
    "rewardkit.rewards.density_ratio:build",
    "Strong-over-weak density ratio log π_strong(y|c⊕x) − log π_weak(y|c⊕x), with a system "
    "prompt or per-domain criteria c given to both models.",
    card="B2 — Strong-over-weak density ratio (CDR)",
    arg_help="STRONG ('default' = SmolLM2 with chat template vs the same weights on plain text); options weak=, reduce=sum|mean|norm, system=, criteria=, condition_weak=, strong_chat_template=, weak_chat_template=, "
    + _ENGINE,
    uses_engine=True,
)
register(
    "similarity",
    "rewardkit.rewards.similarity:build_similarity",
    "Cosine of sentence embeddings (mean pooling + L2 norm) between the response and "
    "query.reference (max over several); NaN without a reference. against=prompt: relevance.",
    card="B10 — Regularized relevance reward (R³), reference-similarity term",
    arg_help="ENCODER ('minilm'/'default' = embedded all-MiniLM-L6-v2, or PATH_OR_ID); options against=reference|prompt, pooling=mean|cls, "
    + _ENGINE,
    uses_engine=True,
)
register(
    "relevance",
    "rewardkit.rewards.relevance:build",
    "R³ regularized relevance: cos(prompt, response) + cos(response, reference) − query-copy "
    "penalty (+ optional length prior), sentence embeddings; no preference data needed.",
    card="B10 — Regularized relevance reward (R³)",
    arg_help="ENCODER ('minilm'/'default' = embedded all-MiniLM-L6-v2); options w_relevance=, w_reference=, w_copy=, w_length= (or a weights dict), n=, target_words=, "
    + _ENGINE,
    uses_engine=True,
)
register(
    "bmas",
    "rewardkit.rewards.similarity:build_bmas",
    "Bidirectional Max-Average Similarity between response and reference tokens in a model's "
    "input-embedding table; NaN without a reference.",
    card="B9 — Mixed-R1 BMAS",
    arg_help="MODEL ('minilm'/'default' = all-MiniLM-L6-v2's table; 'smollm2' as the card); options max_tokens=; the engine options are accepted, only threads matters",
    uses_engine=True,
)
register(
    "judge-pairwise",
    "rewardkit.rewards.judges.build:pairwise",
    "Pairwise generative judge: P(A better than B) from the next-token logits of A and B, judged "
    "in both orders and averaged; score() = P(response better than the reference), NaN without one.",
    card="B6 — LLM-as-judge (pairwise; both orders as in MMRB2)",
    arg_help="'default' (embedded SmolLM2-135M-Instruct), PATH_OR_ID of a causal LM, or openai://HOST:PORT/v1?model=NAME; options use_chat_template=, "
    + _JUDGE_TEXT
    + ", "
    + _ENGINE,
    uses_engine=True,
    endpoint_help=f"{_JUDGE_TEXT}, {_HTTP_JUDGE}",
)
register(
    "judge-rating",
    "rewardkit.rewards.judges.build:rating",
    "Rating judge: expected 1–10 rating Σ k·p(k) from the next-token distribution over the "
    "rating tokens (renormalised; a two-token '10' read in the same pass).",
    card="B6 — LLM-as-judge (rating mode)",
    arg_help="'default' (embedded SmolLM2-135M-Instruct), PATH_OR_ID of a causal LM, or openai://HOST:PORT/v1?model=NAME; options output=expected|probs, use_chat_template=, "
    + _JUDGE_TEXT
    + ", "
    + _ENGINE,
    uses_engine=True,
    endpoint_help=f"output=expected, {_JUDGE_TEXT}, {_HTTP_JUDGE}",
)
register(
    "judge-listwise",
    "rewardkit.rewards.judges.build:listwise",
    "Listwise generative judge: k ≤ 9 responses to one prompt ranked in one call, shown in a "
    "seeded random order; score = P(the response's label is the first answer token). score() "
    "ranks the queries that share a prompt as one group.",
    card="B7 — Listwise judge (RewardBench 2 4-way, GRPO groups)",
    arg_help="'default' (embedded SmolLM2-135M-Instruct), PATH_OR_ID of a causal LM, or openai://HOST:PORT/v1?model=NAME; options order_seed=, use_chat_template=, "
    + _JUDGE_TEXT
    + ", "
    + _ENGINE,
    uses_engine=True,
    endpoint_help=f"order_seed=, {_JUDGE_TEXT}, {_HTTP_JUDGE}",
)
register(
    "verifier",
    "rewardkit.rewards.judges.verifier:build",
    "Model-based soft verifiable reward: a verifier LM reads the question, the reference answer and "
    "the response's final part and answers 1 (agrees) or 0; reward p1/(p1+p0), NaN without a "
    "reference.",
    card="B5 — Model-based soft verifiable reward",
    arg_help="'default' (embedded SmolLM2-135M-Instruct), PATH_OR_ID of a causal LM, or openai://HOST:PORT/v1?model=NAME; options output=prob|raw|binary|logit, tail= (characters of the final part after the last </think>, default 1000; none: all), use_chat_template=, template=, system=, "
    + _ENGINE,
    uses_engine=True,
    endpoint_help=f"output=prob|raw|binary|logit, tail=, template=, system=, {_HTTP_JUDGE}",
)
register(
    "genorm",
    "rewardkit.rewards.judges.genorm:build",
    "Generative outcome verifier (GenORM): a verifier LM samples n step-by-step critiques of the "
    "solution, each ending 'Verification: Is the answer correct (Yes/No)? X'; reward = mean of "
    "P(Yes)/(P(Yes)+P(No)) at each verdict, an unread critique counted 0.5; NaN without a response.",
    card="B4 — Generative outcome verifier and weighted vote (Multi-RM)",
    arg_help="'default' (embedded SmolLM2-135M-Instruct), PATH_OR_ID of a causal LM, or openai://HOST:PORT/v1?model=NAME; options n= (critiques, default 10), temperature= (0.6), top_p= (1), max_new_tokens= (4096), seed= (0), output=mean|readable, prefill= (text or none; default \"Let's verify step by step:\"), keep_critiques= (the critique texts in the stats), use_chat_template=, template=, system=, "
    + _ENGINE,
    uses_engine=True,
    endpoint_help="n=, temperature=, top_p=, max_new_tokens=, seed=, output=mean|readable, prefill=, keep_critiques=, template=, system=, api_key_env=, endpoint=chat|completions, logprobs=, prices=, base_url=, model=, api_key_header=, api_version=, query= and headers= (mappings, in a spec file), cache_dir=, progress= and the request limits (docs/judges.md)",
)
register(
    "clip",
    "rewardkit.rewards.clip_score:build",
    "CLIP-score image–text similarity (any CLIP-style dual encoder): the prompt text against the "
    "response image, or a text response against the prompt image; NaN without an image.",
    card="B15 — Image–text reward interface (CLIP score)",
    arg_help="PATH_OR_ID of a CLIP-style model; options variant=clip (100·cos) | clipscore (2.5·max(cos,0)) | logit, "
    + _ENGINE,
    uses_engine=True,
)
register(
    "image-rm",
    "rewardkit.rewards.image_rm:build",
    "Image reward model: a CLIP-style backbone + scalar head (trained by `rewardkit train` on "
    "image pairs), or a plain CLIP/PickScore checkpoint as exp(logit_scale)·cos; same text/image "
    "pairing as clip; NaN without an image.",
    card="B15 — Image–text reward interface (ImageReward / PickScore shapes)",
    arg_help="PATH (a trained image reward model folder) or PATH_OR_ID of a CLIP-style checkpoint; options processor=, "
    + _ENGINE,
    uses_engine=True,
)
register(
    "vlm-judge",
    "rewardkit.rewards.judges.vlm:build",
    "Generative pointwise judge on a vision-language model: P(Yes) vs P(No) after the judging "
    "template, with the conversation's and the response's images in place.",
    card="B3 — Generative yes-token reward (RewardDance)",
    arg_help="PATH_OR_ID of an AutoModelForImageTextToText model; options output=prob|logit, template=, system=, use_chat_template=, principle=, rubric=, trust_remote_code=, "
    + _ENGINE,
    uses_engine=True,
)
register(
    "vlm-judge-listwise",
    "rewardkit.rewards.judges.vlm:build_listwise",
    "Listwise generative judge on a vision-language model: k ≤ 9 responses (text or images) to "
    "one prompt ranked in one call, shown in a seeded order; score = P(the response is best).",
    card="B7 — Listwise judge",
    arg_help="PATH_OR_ID of an AutoModelForImageTextToText model; options order_seed=, template=, system=, use_chat_template=, principle=, rubric=, trust_remote_code=, "
    + _ENGINE,
    uses_engine=True,
)
register(
    "vlm-judge-pairwise",
    "rewardkit.rewards.judges.vlm:build_pairwise",
    "Pairwise generative judge on a vision-language model: P(A better than B), both orders "
    "averaged (MMRB2 protocol); score() = P(response better than the reference).",
    card="B6 — LLM-as-judge (pairwise; both orders as in MMRB2)",
    arg_help="PATH_OR_ID of an AutoModelForImageTextToText model; options template=, system=, use_chat_template=, principle=, rubric=, trust_remote_code=, "
    + _ENGINE,
    uses_engine=True,
)
register(
    "prm",
    "rewardkit.rewards.prm.reward:build",
    "Process reward model: one score per reasoning step (score_full(...).steps) and their "
    "aggregate; Qwen2.5-Math-PRM (separator token + 2-label token classifier) and Math-Shepherd "
    "(tag token, +/- logits) conventions.",
    card="B4 — ORM vs PRM (process reward models)",
    arg_help="PATH_OR_ID; options convention (qwen|shepherd), aggregate (min|max|last|mean|prod|geomean), cut (nan|prefix: a response truncation cut steps from), split (auto|step|paragraph|line), tag, good, bad, system, trust_remote_code, "
    + _ENGINE,
    uses_engine=True,
)
register(
    "dpo-tokens",
    "rewardkit.rewards.token_rewards:build_dpo_tokens",
    "DPO implicit reward per token, β[log π(y_t|·) − log π_ref(y_t|·)] (score_full(...).tokens, "
    "with character offsets); the tokens sum to dpo:POLICY?ref=REF&reduce=sum.",
    card="B1 — DPO implicit reward (token level)",
    arg_help="POLICY ('default' = embedded SmolLM2); options ref=, beta=, system=, use_chat_template=, "
    + _ENGINE,
    uses_engine=True,
)
register(
    "treg",
    "rewardkit.rewards.token_rewards:build_treg",
    "T-REG self-generated token rewards: tanh of the log-ratio of each token under a 'good' and "
    "a 'bad' system prompt, same model (contrastive prompting).",
    card="B12 — T-REG",
    arg_help="MODEL ('default' = embedded SmolLM2); options good=, bad=, use_chat_template=, "
    + _ENGINE,
    uses_engine=True,
)
register(
    "aligndistil",
    "rewardkit.rewards.token_rewards:build_aligndistil",
    "AlignDistil contrastive DPO reward per token, β[log π_dpo(y_t|·) − log π_rev(y_t|·)] with a "
    "reverse-preference DPO model as the reference.",
    card="B13 — AlignDistil",
    arg_help="DPO_MODEL; options rev= (required), beta=, use_chat_template=, " + _ENGINE,
    uses_engine=True,
)
register(
    "pal",
    "rewardkit.rewards.pal:build",
    "PAL pluralistic reward over frozen MiniLM features: K shared prototypes and per-user "
    "mixture weights (ideal-point or mixture form); unseen users get the population mixture.",
    card="A10 — Ideal-point mixture RM (PAL)",
    arg_help="DIR from `rewardkit pal train`; options user=ID, " + _ENGINE,
    uses_engine=True,
)
register(
    "domain",
    "rewardkit.rewards.domain:build",
    "Domain-knowledge reward: a BT-fitted weighted sum of interpretable features (aspect "
    "coverage, sentiment faithfulness, redundancy, length fit, arithmetic); components per feature.",
    card="A15 — Domain-knowledge-infused reward model",
    arg_help="DIR from `rewardkit domain fit`; no options",
)
register(
    "polar",
    "rewardkit.rewards.polar:build",
    "POLAR policy-discriminative reward: scores a response against the record's reference "
    "answer (frozen MiniLM embeddings + trained head); NaN without a reference.",
    card="A9 — Policy Discriminative Learning (POLAR)",
    arg_help="DIR from `rewardkit polar pretrain` / `polar finetune`; options: only the engine options (dtype, device, threads, …; docs/reward-specs.md)",
    uses_engine=True,
)
register(
    "dmoerm",
    "rewardkit.rewards.dmoerm:build",
    "DMoERM double-layer mixture of experts: each query routed to its task category (a meta "
    "field, else a MiniLM router, else the default category; NaN without one), the category's "
    "capability experts' last hidden states aggregated by W₂·PReLU(W₁[h_1;…;h_C]).",
    card="A5 — DMoERM",
    arg_help="DIR from `rewardkit dmoerm fit`; options key= (the meta field naming the category, "
    "default the fit's), " + _ENGINE,
    uses_engine=True,
)
register(
    "remote",
    "rewardkit.rewards.endpoints.server:build",
    "A reward served by another `rewardkit serve` server (POST /v1/rewards): usable in "
    "ensembles, routes and RL adapters; answers land in the local score cache.",
    card=None,
    arg_help="URL of the server; options route=, api_key_env=, api_key_header=, api_version=, "
    "query= and headers= (mappings, in a spec file), batch_size=, cache_dir=, progress=, "
    + _LIMITS,
    uses_engine=True,
)
register(
    "vllm",
    "rewardkit.rewards.endpoints.pooling:build_vllm",
    "A classifier reward model served by vLLM (POST /classify or /pooling; the server applies "
    "the chat template, or the client does with tokenizer=).",
    card=None,
    arg_help="URL of the vLLM server; options model=, endpoint=classify|pooling, label=0, activation=false, tokenizer=, api_key_env=, api_key_header=, api_version=, query=, headers=, batch_size=, cache_dir=, progress=, "
    + _LIMITS,
    uses_engine=True,
)
register(
    "sglang",
    "rewardkit.rewards.endpoints.pooling:build_sglang",
    "A classifier reward model served by SGLang (--is-embedding; POST /classify with text "
    "formatted by the reward model's chat template).",
    card=None,
    arg_help="URL of the SGLang server; options tokenizer= (required), model=, label=0, api_key_env=, api_key_header=, api_version=, query=, headers=, batch_size=, cache_dir=, progress=, "
    + _LIMITS,
    uses_engine=True,
)
