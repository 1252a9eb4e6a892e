// glibc malloc tuning (mallopt); malloc.h is not part of the Glibc Swift module.
#include <malloc.h>
