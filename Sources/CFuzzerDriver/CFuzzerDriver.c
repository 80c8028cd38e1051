// The declaration in include/CFuzzerDriver.h is all this target provides; libFuzzer
// itself comes from the toolchain when dms-fuzz is built with -sanitize=fuzzer.
#include "CFuzzerDriver.h"
