// Worker threads kept between calls for thread_pool_for (pipeline.cc).
//
// Starting std::threads for every parallel region (a front end call has two: the tiles, then
// the dB clamp) cost thread creation and, worse, a fresh thread_local scratch per thread
// whose pages fault in again on every call. The pool starts its threads on first use, keeps
// them blocked on a condition variable, and is never destroyed: threads still waiting at
// exit end with the process, so exit cannot hang on a join. It serves one call at a time; a
// concurrent call, a call from a forked child (whose copy of the pool has no threads), a
// call from inside a pool job or one asking for more threads than there are cores gets
// nullptr from acquire() and starts threads of its own.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kapre_fast {

class WorkerPool {
 public:
  // The process's pool if a call with `helpers` threads besides its own may use it (then
  // release() it after run), else nullptr. The pool keeps at most one thread per core: a
  // call asking for more starts its own, which end with it.
  static WorkerPool* acquire(int helpers) {
    static WorkerPool* const pool = new WorkerPool();  // never destroyed (see above)
    static const int cores = static_cast<int>(std::thread::hardware_concurrency());
    if (helpers > (cores > 1 ? cores : 1) || getpid() != pool->pid_ ||
        pool->busy_.exchange(true, std::memory_order_acquire)) {
      return nullptr;
    }
    return pool;
  }
  void release() { busy_.store(false, std::memory_order_release); }

  // Runs work() on `helpers` pool threads and on the caller; returns when all have returned.
  // work must not throw (thread_pool_for's catches everything).
  void run(int helpers, const std::function<void()>& work) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (static_cast<int>(threads_.size()) < helpers) {
        const int id = static_cast<int>(threads_.size());
        threads_.emplace_back([this, id] { serve(id); });
      }
      job_ = &work;
      wanted_ = helpers;
      pending_ = helpers;
      ++generation_;
    }
    wake_.notify_all();
    work();
    std::unique_lock<std::mutex> lock(mutex_);
    wait(done_, lock, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  WorkerPool() : pid_(getpid()) {}

  // condition_variable::wait(unique_lock&) is a libstdc++ symbol versioned GLIBCXX_3.4.30 by
  // g++ 12, which would lift the wheel's tag past manylinux_2_34; wait_for is inline
  // (pthread_cond_clockwait, glibc 2.30). The timeout only re-checks the predicate.
  template <class Predicate>
  static void wait(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                   Predicate ready) {
    while (!ready()) cv.wait_for(lock, std::chrono::seconds(60));
  }

  void serve(int id) {
    int64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wait(wake_, lock, [&] { return generation_ != seen; });
      seen = generation_;
      if (id >= wanted_) continue;
      const std::function<void()>* job = job_;
      lock.unlock();
      (*job)();
      lock.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }

  const pid_t pid_;
  std::atomic<bool> busy_{false};  // set by the call using the pool
  std::mutex mutex_;               // guards everything below
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  const std::function<void()>* job_ = nullptr;
  int64_t generation_ = 0;
  int wanted_ = 0, pending_ = 0;
};

}  // namespace kapre_fast
