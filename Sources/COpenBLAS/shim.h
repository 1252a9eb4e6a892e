// OpenBLAS CBLAS interface; cblas.h also declares openblas_set_num_threads and friends.
#include <cblas.h>
