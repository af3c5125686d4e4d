"""Published chat templates of the Llama students, and the tokenizer settings that go with them.

The tiny test model (raft.testing.CHAT_TEMPLATE) speaks a Llama-3-like template with ``{% generation %}``
markers and ``<|eot_id|>`` as EOS. The real students do not: Llama-2-chat wraps the user turn in
``[INST] ... [/INST]`` and ends the answer with `` </s>`` (its EOS), Llama-3.1 always opens with a system
header carrying "Cutting Knowledge Date ... Today Date ...", and none of the three marks the assistant
part with ``{% generation %}``. tests/test_chat_templates.py puts these strings on the tiny tokenizer
and checks training (TRL) and evaluation (lm-eval) against them.

Where the strings come from: they are the ``chat_template`` values of the ``tokenizer_config.json``
files Meta published on the Hugging Face Hub (meta-llama/Llama-2-7b-chat-hf, the same in the 13b/70b
chat repos; meta-llama/Meta-Llama-3-8B-Instruct; meta-llama/Llama-3.1-8B-Instruct), JSON-decoded. This
machine cannot reach the Hub, so they were WRITTEN FROM MEMORY, then checked:

- Llama-3 and Llama-3.1: TRL ships byte copies of the Hub templates to recognise them
  (trl/chat_templates/llama3.jinja and llama3_1.jinja; a weekly TRL CI job compares them with the Hub).
  ``test_templates_match_trl_copies`` asserts ours are identical to those files.
- Llama-2-chat: no copy in any installed package; the string below agrees character for character
  with the one quoted for meta-llama/Llama-2-13b-chat-hf in public code (e.g. tokenizer test tables
  that list it with bos ``<s>``, eos ``</s>``, unk ``<unk>``), including the two spaces in ``' '  +``.

Loss masks without ``{% generation %}``: none of these templates has the markers, so TRL cannot build an
``assistant_masks`` column from them (``return_assistant_tokens_mask`` needs the markers). With
``assistant_only_loss=True`` SFTTrainer (TRL 1.16) swaps in a patched copy for the templates it recognises
by exact match: Llama-3 gets trl/chat_templates/llama3_training.jinja, while Llama-3.1 and Llama-2 have
no patched copy and ``get_training_chat_template`` raises "The chat template is not training-compatible".
raft.finetune does not rely on markers: it trains on ``prompt``/``completion`` columns with ``completion_only_loss=True``, and TRL then
tokenises ``apply_chat_template(prompt, add_generation_prompt=True)`` and
``apply_chat_template(prompt + completion)`` and masks in every token after their common prefix: the
answer and whatever the template writes after it (``<|eot_id|>``; `` </s>`` for Llama-2).
"""

from __future__ import annotations

from dataclasses import dataclass

# meta-llama/Llama-2-7b-chat-hf (and -13b/-70b-chat-hf). One line in the JSON; `\\n` there is `\n`
# here, an escape inside a Jinja string literal (Jinja turns it into a newline).
LLAMA2_CHAT = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)

# meta-llama/Meta-Llama-3-8B-Instruct (also -70B-Instruct). The JSON's `\n\n` inside the header string
# are real newlines in the decoded template.
LLAMA3_INSTRUCT = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# meta-llama/Llama-3.1-8B-Instruct (also -70B/-405B-Instruct): multi-line, `\n` inside its Jinja string
# literals is a backslash escape (a raw string here), the line breaks between tags are real.
LLAMA31_INSTRUCT = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


@dataclass(frozen=True)
class TemplateCase:
    """One student: its template and the tokenizer / generation settings Meta published with it.

    ``special_tokens`` are added to the tiny vocabulary (as special tokens, like the real ones);
    ``pad`` is None as in every one of these tokenizer_config.json files (raft.finetune.model.load_tokenizer
    then picks one). ``generation_eos`` are the tokens of generation_config.json's ``eos_token_id``.
    ``end_of_turn`` is what the template writes after an assistant answer.
    """

    name: str
    template: str
    special_tokens: tuple[str, ...]
    bos: str
    eos: str
    unk: str | None
    end_of_turn: str
    generation_eos: tuple[str, ...]
    note: str = ""


CASES = [
    TemplateCase(
        name="llama-2-chat",
        template=LLAMA2_CHAT,
        # only these three are special in the real vocabulary: [INST], [/INST], <<SYS>> are plain text
        special_tokens=("<unk>", "<s>", "</s>"),
        bos="<s>",
        eos="</s>",
        unk="<unk>",
        end_of_turn=" </s>",
        generation_eos=("</s>",),
    ),
    TemplateCase(
        name="llama-3-instruct",
        template=LLAMA3_INSTRUCT,
        special_tokens=(*LLAMA3_SPECIAL, "<|reserved_special_token_0|>"),
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",  # the repo's tokenizer_config after Meta's May 2024 fix (it said <|end_of_text|> at release)
        unk=None,
        end_of_turn="<|eot_id|>",
        generation_eos=("<|end_of_text|>", "<|eot_id|>"),  # [128001, 128009]
    ),
    TemplateCase(
        name="llama-3.1-instruct",
        template=LLAMA31_INSTRUCT,
        special_tokens=(*LLAMA3_SPECIAL, "<|eom_id|>", "<|python_tag|>", "<|finetune_right_pad_id|>"),
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",  # Llama-3.1-8B-Instruct's tokenizer_config.json
        unk=None,
        end_of_turn="<|eot_id|>",
        generation_eos=("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"),  # [128001, 128008, 128009]
    ),
    TemplateCase(
        name="llama-3.1-eos-end_of_text",
        template=LLAMA31_INSTRUCT,
        special_tokens=(*LLAMA3_SPECIAL, "<|eom_id|>", "<|python_tag|>", "<|finetune_right_pad_id|>"),
        bos="<|begin_of_text|>",
        # the base Llama-3.1-8B tokenizer (and the first Llama-3-Instruct upload): a student whose tokenizer
        # keeps this EOS while its template ends turns with <|eot_id|>
        eos="<|end_of_text|>",
        unk=None,
        end_of_turn="<|eot_id|>",
        generation_eos=("<|end_of_text|>",),
        note="EOS <|end_of_text|>: only the task's until stops at <|eot_id|>",
    ),
]
