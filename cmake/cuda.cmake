# CUDA kernels (csrc/cuda), their host emulation and the CuPy-facing module.
# Controlled by KAPRE_FAST_CUDA=AUTO|ON|OFF; sets KF_CUDA_BUILT to true when the CUDA module
# is built.
#
#   kf_gpu_host     plan, tables and launch geometry (g++), shared by both modules below
#   _gpu_emulation  the kernels' phases run on the host (g++): ALWAYS built, no CUDA needed
#   _cuda           the kernels (nvcc) + launch functions for CuPy arrays: when nvcc is found
#
# The kernels and the emulation must compute the same bits: no implicit multiply-add
# contraction on either side (--fmad=false, -ffp-contract=off), fma only where written.

add_library(kf_gpu_host STATIC csrc/cuda/plan.cc)
target_link_libraries(kf_gpu_host PUBLIC kf_core)
target_compile_options(kf_gpu_host PRIVATE ${KF_WARNINGS} -O2)

pybind11_add_module(_gpu_emulation MODULE WITH_SOABI csrc/cuda/emulation_module.cc)
target_link_libraries(_gpu_emulation PRIVATE kf_gpu_host)
target_compile_options(_gpu_emulation PRIVATE ${KF_WARNINGS} -O2 -ffp-contract=off
                                              -fno-strict-aliasing)
install(TARGETS _gpu_emulation LIBRARY DESTINATION kapre_fast)

# ---- the CUDA module ----
# One architecture by default, to keep CI builds short (PTX for it is embedded too, so newer
# GPUs JIT it); release builds: -DCMAKE_CUDA_ARCHITECTURES="75;80;86;89;90".
if(NOT KAPRE_FAST_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
      set(CMAKE_CUDA_ARCHITECTURES 80 CACHE STRING "CUDA architectures of the kernels")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)

    string(REPLACE ";" "," KF_CUDA_ARCH_LIST "${CMAKE_CUDA_ARCHITECTURES}")
    add_library(kf_cuda_kernels OBJECT csrc/cuda/kernels.cu)
    target_compile_definitions(kf_cuda_kernels PRIVATE KF_CUDA_ARCHS="${KF_CUDA_ARCH_LIST}")
    target_compile_options(kf_cuda_kernels PRIVATE
      --fmad=false -Xcompiler=-Wall -Xcompiler=-Wextra
      --Werror=cross-execution-space-call -lineinfo)
    target_link_libraries(kf_cuda_kernels PRIVATE CUDA::cudart_static)

    pybind11_add_module(_cuda MODULE WITH_SOABI csrc/cuda/cuda_module.cc
                        $<TARGET_OBJECTS:kf_cuda_kernels>)
    target_compile_definitions(_cuda PRIVATE KF_CUDA_ARCHS="${KF_CUDA_ARCH_LIST}")
    target_compile_options(_cuda PRIVATE ${KF_WARNINGS} -O2)
    target_link_libraries(_cuda PRIVATE kf_gpu_host CUDA::cudart_static)
    install(TARGETS _cuda LIBRARY DESTINATION kapre_fast)
    set(KF_CUDA_BUILT true)
    message(STATUS "kapre_fast: CUDA ${CMAKE_CUDA_COMPILER_VERSION} kernels for "
                   "architectures ${CMAKE_CUDA_ARCHITECTURES}")
  elseif(KAPRE_FAST_CUDA STREQUAL "ON")
    message(FATAL_ERROR "KAPRE_FAST_CUDA=ON but no CUDA compiler (nvcc) was found; set "
                        "CMAKE_CUDA_COMPILER or put nvcc on PATH")
  else()
    message(STATUS "kapre_fast: no CUDA compiler found, building without the CUDA kernels")
  endif()
endif()
