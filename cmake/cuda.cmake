# CUDA kernels (csrc/cuda), their host emulation and the CuPy-facing module.
# Controlled by KAPRE_FAST_CUDA=AUTO|ON|OFF; sets KF_CUDA_BUILT to true when the CUDA module is built.
