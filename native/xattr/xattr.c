/*
 * xattr.node: extended attributes in process, for src/util/xattr.ts (Node
 * has no xattr API). A Node-API addon, so any Node >= 20 loads it unchanged.
 * Symlinks are never followed (llistxattr/lgetxattr/lsetxattr). Failures are
 * returned as Linux errno numbers, never thrown: the caller decides what an
 * errno means and types the error. Only misuse (wrong argument types) throws.
 *
 *   list(path: string): number | Array<string | Buffer>
 *       errno, or the attributes as a flat [name, value, name, value, ...]
 *       array. An attribute removed between listing and reading is left out.
 *   set(path: string, name: string, value: Uint8Array): number
 *       0, or the errno of lsetxattr (flags 0: create or replace).
 *
 * Strings are passed as UTF-8; the caller refuses NUL bytes in them first.
 */
#include <errno.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#define MAX_PATH_LEN 4096   /* PATH_MAX, including the NUL */
#define MAX_NAME_LEN 256    /* XATTR_NAME_MAX + 1 */
#define MAX_LIST_LEN 65536  /* XATTR_LIST_MAX */
#define MAX_VALUE_LEN 65536 /* XATTR_SIZE_MAX */

#define CHECK(env, call)                                                         \
  do {                                                                           \
    if ((call) != napi_ok) {                                                     \
      napi_throw_error((env), "HPCC_E_XATTR_TOOL", "N-API call failed: " #call); \
      return NULL;                                                               \
    }                                                                            \
  } while (0)

/* Copies a JS string argument into buf (cap bytes with the NUL); 0, or ENAMETOOLONG / -1 (thrown). */
static int get_string(napi_env env, napi_value v, char *buf, size_t cap, const char *what) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
    napi_throw_type_error(env, NULL, what);
    return -1;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return -1;
  if (len + 1 > cap) return ENAMETOOLONG;
  if (napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok) return -1;
  return 0;
}

static napi_value errno_value(napi_env env, int err) {
  napi_value out;
  CHECK(env, napi_create_int32(env, err, &out));
  return out;
}

/* lgetxattr into a malloc'd buffer, retrying when the value grows meanwhile; length, or -errno. */
static ssize_t get_value(const char *path, const char *name, char **out) {
  for (int tries = 0; tries < 4; tries++) {
    ssize_t n = lgetxattr(path, name, NULL, 0);
    if (n < 0) return -errno;
    char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf == NULL) return -ENOMEM;
    ssize_t m = lgetxattr(path, name, buf, (size_t)n);
    if (m >= 0) {
      *out = buf;
      return m;
    }
    int err = errno;
    free(buf);
    if (err != ERANGE) return -err;
  }
  return -ERANGE;
}

static napi_value list(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "list(path): one argument expected");
    return NULL;
  }
  char path[MAX_PATH_LEN];
  int err = get_string(env, argv[0], path, sizeof path, "list: path must be a string");
  if (err != 0) return err < 0 ? NULL : errno_value(env, err);
  char names[MAX_LIST_LEN];
  ssize_t len = llistxattr(path, names, sizeof names);
  if (len < 0) return errno_value(env, errno);
  napi_value arr;
  CHECK(env, napi_create_array(env, &arr));
  uint32_t idx = 0;
  for (ssize_t off = 0; off < len;) {
    const char *name = names + off;
    size_t nlen = strnlen(name, (size_t)(len - off));
    off += (ssize_t)nlen + 1;
    if (nlen == 0) continue;
    char *value = NULL;
    ssize_t vlen = get_value(path, name, &value);
    if (vlen == -ENODATA) continue; /* removed since the listing */
    if (vlen < 0) return errno_value(env, (int)-vlen);
    napi_value jname, jvalue;
    napi_status st = napi_create_string_utf8(env, name, nlen, &jname);
    if (st == napi_ok) st = napi_create_buffer_copy(env, (size_t)vlen, value, NULL, &jvalue);
    free(value);
    CHECK(env, st);
    CHECK(env, napi_set_element(env, arr, idx++, jname));
    CHECK(env, napi_set_element(env, arr, idx++, jvalue));
  }
  return arr;
}

static napi_value set(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "set(path, name, value): three arguments expected");
    return NULL;
  }
  char path[MAX_PATH_LEN];
  char name[MAX_NAME_LEN];
  int err = get_string(env, argv[0], path, sizeof path, "set: path must be a string");
  if (err == 0) err = get_string(env, argv[1], name, sizeof name, "set: name must be a string");
  if (err != 0) return err < 0 ? NULL : errno_value(env, err == ENAMETOOLONG ? ERANGE : err);
  bool is_ta = false;
  napi_typedarray_type type;
  napi_value ab;
  size_t vlen = 0, voff = 0;
  void *value = NULL;
  if (napi_is_typedarray(env, argv[2], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, argv[2], &type, &vlen, &value, &ab, &voff) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "set: value must be a Uint8Array");
    return NULL;
  }
  if (vlen > MAX_VALUE_LEN) return errno_value(env, E2BIG);
  if (value == NULL) value = (void *)""; /* empty arrays may have no backing store */
  return errno_value(env, lsetxattr(path, name, value, vlen, 0) == 0 ? 0 : errno);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"list", NULL, list, NULL, NULL, NULL, napi_default, NULL},
      {"set", NULL, set, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
