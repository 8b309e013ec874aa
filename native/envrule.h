/*
 * Which environment variables a launch memo keys by value: the rule of
 * src/runtime/memo.ts envKeyedByValue, on the lists the build generates from
 * it (hpcc-contract.h, src/cli/contract-header.ts). The others are keyed by
 * name only: their values are passed through into the payload's environment
 * unchanged, so a memo's plan takes the current values (the launch helper's
 * --host-env). hpcc verifies that before it writes a memo, by building the
 * plan again with those values changed.
 */
#ifndef HPCC_ENVRULE_H
#define HPCC_ENVRULE_H
#include <string.h>

#include "hpcc-contract.h"

/* name: n bytes (no '='); names of HPCC_ENV_NAME_KEYED_BYTES bytes or more are keyed by value */
static inline int hpcc_env_keyed(const char *name, size_t n)
{
  if (n == 0 || n >= HPCC_ENV_NAME_KEYED_BYTES) return 1;
  for (int i = 0; HPCC_ENV_KEYED_PREFIXES[i]; i++) {
    size_t p = strlen(HPCC_ENV_KEYED_PREFIXES[i]);
    if (n >= p && !strncmp(name, HPCC_ENV_KEYED_PREFIXES[i], p)) return 1;
  }
  for (int i = 0; HPCC_ENV_KEYED_NAMES[i]; i++)
    if (strlen(HPCC_ENV_KEYED_NAMES[i]) == n && !strncmp(name, HPCC_ENV_KEYED_NAMES[i], n)) return 1;
  return 0;
}

/* memo.ts envIsCredential, on ENV_CREDENTIAL_WORDS from the generated header */
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
