"""Configs a user already has before ollama-rig runs: other providers, models, keys, comments.

Used by the merge unit tests, the offline harness checks and the integration tier: whatever
ollama-rig writes, everything here outside its managed entries must come through unchanged.
Paths are relative to the user's home.
"""

from __future__ import annotations

SEEDS: dict[str, str] = {
    ".config/opencode/opencode.json": """{
  "$schema": "https://opencode.ai/config.json",
  "share": "disabled",
  "instructions": ["CONTRIBUTING.md"],
  "autoupdate": false,
  "model": "anthropic/claude-sonnet-4-5",
  "provider": {
    "anthropic": {"options": {"apiKey": "{env:ANTHROPIC_API_KEY}"}},
    "ollama": {
      "models": {"llama3.1:8b": {"name": "Llama 3.1 (mine)"}}
    }
  }
}
""",
    ".continue/config.yaml": """# my Continue setup
name: My config
version: 0.0.1
schema: v1
models:
  - name: GPT-4o
    provider: openai
    model: gpt-4o
    apiKey: ${{ secrets.OPENAI_API_KEY }}
    roles: [chat]
context:
  - provider: code
  - provider: diff
""",
    ".aider.conf.yml": """# my aider defaults
model: gpt-4o
dark-mode: true
auto-commits: false
openai-api-key: sk-test-not-a-real-key
set-env:
  - AIDER_TEST_MARKER=1
""",
    ".aider.model.settings.yml": """- name: gpt-4o
  edit_format: diff
  use_repo_map: true
""",
    ".cline/data/settings/providers.json": """{
  "version": 1,
  "lastUsedProvider": "anthropic",
  "modes": {},
  "providers": {
    "anthropic": {
      "settings": {
        "provider": "anthropic",
        "apiKey": "sk-ant-test-not-a-real-key",
        "model": "claude-sonnet-4-5"
      },
      "updatedAt": "2026-01-02T03:04:05.000Z",
      "tokenSource": "manual"
    }
  }
}
""",
    ".cline/data/globalState.json": """{
  "welcomeViewCompleted": true,
  "actModeApiProvider": "anthropic",
  "actModeApiModelId": "claude-sonnet-4-5"
}
""",
}
