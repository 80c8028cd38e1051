// libcurl for Swift: curl_easy_setopt and curl_easy_getinfo are variadic and do not
// import, so each argument type gets a typed wrapper (TOOLCHAIN.md, "libcurl from Swift").
#ifndef DMS_CCURL_SHIM_H
#define DMS_CCURL_SHIM_H

#include <curl/curl.h>

static inline CURLcode dms_curl_set_long(CURL *handle, CURLoption option, long value) {
  return curl_easy_setopt(handle, option, value);
}

static inline CURLcode dms_curl_set_string(CURL *handle, CURLoption option, const char *value) {
  return curl_easy_setopt(handle, option, value);
}

static inline CURLcode dms_curl_set_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
  return curl_easy_setopt(handle, option, value);
}

static inline CURLcode dms_curl_set_pointer(CURL *handle, CURLoption option, void *value) {
  return curl_easy_setopt(handle, option, value);
}

typedef size_t (*dms_curl_read_callback)(char *buffer, size_t size, size_t count, void *context);
typedef size_t (*dms_curl_write_callback)(char *buffer, size_t size, size_t count, void *context);
typedef int (*dms_curl_debug_callback)(CURL *handle, curl_infotype type, char *data, size_t size, void *context);

static inline CURLcode dms_curl_set_read_function(CURL *handle, dms_curl_read_callback callback) {
  return curl_easy_setopt(handle, CURLOPT_READFUNCTION, callback);
}

static inline CURLcode dms_curl_set_write_function(CURL *handle, dms_curl_write_callback callback) {
  return curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
}

static inline CURLcode dms_curl_set_header_function(CURL *handle, dms_curl_write_callback callback) {
  return curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, callback);
}

static inline CURLcode dms_curl_set_debug_function(CURL *handle, dms_curl_debug_callback callback) {
  return curl_easy_setopt(handle, CURLOPT_DEBUGFUNCTION, callback);
}

static inline CURLcode dms_curl_set_error_buffer(CURL *handle, char *buffer) {
  return curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, buffer);
}

static inline long dms_curl_response_code(CURL *handle) {
  long code = 0;
  if (curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK) return 0;
  return code;
}

static inline long dms_curl_connects(CURL *handle) {
  long count = 0;
  if (curl_easy_getinfo(handle, CURLINFO_NUM_CONNECTS, &count) != CURLE_OK) return 0;
  return count;
}

/// CURL_ERROR_SIZE, for the error buffer.
static inline size_t dms_curl_error_size(void) { return CURL_ERROR_SIZE; }

#endif
