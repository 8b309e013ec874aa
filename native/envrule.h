/*
 * Which environment variables a launch memo keys by value (src/runtime/memo.ts
 * has the same list, checked by test/unit/runtime/memo.test.ts). The others are
 * keyed by name only: their values are passed through into the payload's
 * environment unchanged, so a memo's plan takes the current values (the
 * launch helper's --host-env). hpcc verifies that before it writes a memo, by
 * building the plan again with those values changed.
 */
#ifndef HPCC_ENVRULE_H
#define HPCC_ENVRULE_H
#include <string.h>

static const char *const HPCC_ENV_KEYED_PREFIXES[] = {"HPCC", "__HPCC", "SINGULARITY", "APPTAINER", "XDG_", "LD_", "NODE_", "UV_", 0};
static const char *const HPCC_ENV_KEYED_NAMES[] = {"HOME", "PATH", "TMPDIR", "SHELL", "USER", "LOGNAME", "PWD", "PS1", 0};

/* name: n bytes (no '='); names of 256 bytes or more are keyed by value */
static inline int hpcc_env_keyed(const char *name, size_t n)
{
  if (n == 0 || n >= 256) return 1;
  for (int i = 0; HPCC_ENV_KEYED_PREFIXES[i]; i++) {
    size_t p = strlen(HPCC_ENV_KEYED_PREFIXES[i]);
    if (n >= p && !strncmp(name, HPCC_ENV_KEYED_PREFIXES[i], p)) return 1;
  }
  for (int i = 0; HPCC_ENV_KEYED_NAMES[i]; i++)
    if (strlen(HPCC_ENV_KEYED_NAMES[i]) == n && !strncmp(name, HPCC_ENV_KEYED_NAMES[i], n)) return 1;
  return 0;
}

/* memo.ts ENV_CREDENTIAL_WORDS: a variable keyed by value whose name has one of these (any case)
 * keeps a launch from being memoised (envIsCredential) */
static const char *const HPCC_ENV_CREDENTIAL_WORDS[] = {"PASSW", "PASSPHRASE", "TOKEN", "SECRET", "CRED", "AUTH", "KEY", "USERNAME", "LOGIN", "COOKIE", 0};

static inline int hpcc_env_credential(const char *name, size_t n)
{
  if (!hpcc_env_keyed(name, n)) return 0;
  for (int i = 0; HPCC_ENV_CREDENTIAL_WORDS[i]; i++) {
    size_t w = strlen(HPCC_ENV_CREDENTIAL_WORDS[i]);
    for (size_t at = 0; at + w <= n; at++) {
      size_t j = 0;
      while (j < w && (name[at + j] & ~0x20) == HPCC_ENV_CREDENTIAL_WORDS[i][j]) j++;
      if (j == w) return 1;
    }
  }
  return 0;
}
#endif
