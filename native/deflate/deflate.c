/*
 * deflate.node: zlib-format (RFC 1950) block compression with libdeflate,
 * for the squashfs gzip codec (squashfs-format.md §2: every gzip block is one
 * zlib stream). A Node-API addon so that any Node >= 20 loads it unchanged.
 *
 *   compress(src: Uint8Array, level: number): Promise<Buffer>
 *     runs on the libuv threadpool (one job per block, like zlib.deflate).
 *   compressSync(src: Uint8Array, level: number): Buffer
 *
 * Each threadpool thread keeps one libdeflate_compressor (for the last level
 * it used), so a block costs no allocation of compressor state.
 */
#include <libdeflate.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local struct libdeflate_compressor *tl_comp;
static _Thread_local int tl_level;

/* The calling thread's compressor for `level` (1..12), or NULL when out of memory. */
static struct libdeflate_compressor *thread_compressor(int level) {
  if (tl_comp != NULL && tl_level == level) return tl_comp;
  if (tl_comp != NULL) libdeflate_free_compressor(tl_comp);
  tl_comp = libdeflate_alloc_compressor(level);
  tl_level = level;
  return tl_comp;
}

/* Compress src into a new malloc'd buffer; returns 0 and sets *out and *out_len, or -1. */
static int do_compress(const void *src, size_t len, int level, void **out, size_t *out_len) {
  struct libdeflate_compressor *c = thread_compressor(level);
  if (c == NULL) return -1;
  size_t bound = libdeflate_zlib_compress_bound(c, len);
  void *buf = malloc(bound);
  if (buf == NULL) return -1;
  size_t n = libdeflate_zlib_compress(c, src, len, buf, bound);
  if (n == 0) {
    free(buf);
    return -1;
  }
  *out = buf;
  *out_len = n;
  return 0;
}

#define CHECK(env, call)                                        \
  do {                                                          \
    if ((call) != napi_ok) {                                    \
      napi_throw_error((env), "HPCC_E_DEFLATE", "N-API call failed: " #call); \
      return NULL;                                              \
    }                                                           \
  } while (0)

/* Reads (src, level) arguments; throws a TypeError/RangeError and returns -1 on bad input. */
static int read_args(napi_env env, napi_callback_info info, napi_value *src_val, void **data, size_t *len, int *level) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "compress(src, level): two arguments expected");
    return -1;
  }
  bool is_ta = false;
  napi_is_typedarray(env, argv[0], &is_ta);
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (!is_ta || napi_get_typedarray_info(env, argv[0], &type, len, data, &ab, &off) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "compress: src must be a Uint8Array");
    return -1;
  }
  int32_t lv = 0;
  if (napi_get_value_int32(env, argv[1], &lv) != napi_ok || lv < 1 || lv > 12) {
    napi_throw_range_error(env, NULL, "compress: level must be an integer 1..12");
    return -1;
  }
  *level = lv;
  *src_val = argv[0];
  if (*data == NULL) *data = (void *)""; /* empty arrays may have no backing store */
  return 0;
}

static napi_value compress_sync(napi_env env, napi_callback_info info) {
  napi_value src_val, result;
  void *data, *out;
  size_t len, out_len;
  int level;
  if (read_args(env, info, &src_val, &data, &len, &level) != 0) return NULL;
  if (do_compress(data, len, level, &out, &out_len) != 0) {
    napi_throw_error(env, "HPCC_E_DEFLATE", "libdeflate: compression failed (out of memory)");
    return NULL;
  }
  napi_status st = napi_create_buffer_copy(env, out_len, out, NULL, &result);
  free(out);
  CHECK(env, st);
  return result;
}

struct job {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref src_ref; /* keeps the input alive while a worker thread reads it */
  const void *data;
  size_t len;
  int level;
  void *out;
  size_t out_len;
  int failed;
};

static void job_execute(napi_env env, void *arg) {
  (void)env;
  struct job *j = arg;
  j->failed = do_compress(j->data, j->len, j->level, &j->out, &j->out_len) != 0;
}

static void job_complete(napi_env env, napi_status status, void *arg) {
  struct job *j = arg;
  napi_value value;
  if (status == napi_ok && !j->failed &&
      napi_create_buffer_copy(env, j->out_len, j->out, NULL, &value) == napi_ok) {
    napi_resolve_deferred(env, j->deferred, value);
  } else {
    napi_value msg, code;
    napi_create_string_utf8(env, "libdeflate: compression failed (out of memory or cancelled)", NAPI_AUTO_LENGTH, &msg);
    napi_create_string_utf8(env, "HPCC_E_DEFLATE", NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, msg, &value);
    napi_reject_deferred(env, j->deferred, value);
  }
  free(j->out);
  napi_delete_reference(env, j->src_ref);
  napi_delete_async_work(env, j->work);
  free(j);
}

static napi_value compress_async(napi_env env, napi_callback_info info) {
  napi_value src_val, promise, name;
  struct job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    napi_throw_error(env, "HPCC_E_DEFLATE", "out of memory");
    return NULL;
  }
  void *data;
  if (read_args(env, info, &src_val, &data, &j->len, &j->level) != 0) {
    free(j);
    return NULL;
  }
  j->data = data;
  if (napi_create_reference(env, src_val, 1, &j->src_ref) != napi_ok ||
      napi_create_promise(env, &j->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "hpcc:deflate", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, job_execute, job_complete, j, &j->work) != napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    napi_throw_error(env, "HPCC_E_DEFLATE", "could not queue the compression job");
    return NULL; /* j leaks on this (never seen) path: its references may be live */
  }
  return promise;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"compress", NULL, compress_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"compressSync", NULL, compress_sync, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE_INIT() {
  return init(env, exports);
}
