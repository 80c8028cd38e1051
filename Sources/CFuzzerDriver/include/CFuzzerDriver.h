#ifndef DMS_CFUZZERDRIVER_H
#define DMS_CFUZZERDRIVER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (from the toolchain's libclang_rt.fuzzer, linked in by
/// -sanitize=fuzzer): runs `callback` on generated inputs, taking libFuzzer's usual
/// command-line flags.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
