// CRC32C for RocksDB with the CPU's crc32 instruction.
//
// Debian builds librocksdb portable, so its CRC32C (every WAL record, every table block) is the
// table-driven software loop: ~4% of the server's CPU under a pod-create load, all of it on the
// store's committer thread. RocksDB reaches that code through rocksdb::crc32c::Extend, called
// via the PLT, so a definition in the executable takes its place for the library too (as a
// malloc in an executable does for libc). It computes the same function, the Castagnoli CRC;
// check_crc32c() compares it with the library's own before the store opens.
#include "store/crc32c.h"

#include <dlfcn.h>
#include <nmmintrin.h>

#include <cstdint>
#include <cstring>

namespace berth::store {
namespace {

using ExtendFn = std::uint32_t (*)(std::uint32_t, const char*, std::size_t);

// The library's definition: the one after ours in symbol lookup order.
ExtendFn library_extend() {
  static const ExtendFn fn = reinterpret_cast<ExtendFn>(dlsym(RTLD_NEXT, "_ZN7rocksdb6crc32c6ExtendEjPKcm"));
  return fn;
}

__attribute__((target("sse4.2"))) std::uint32_t extend_sse42(std::uint32_t crc, const char* p, std::size_t n) {
  std::uint64_t l = crc ^ 0xffffffffu;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    l = _mm_crc32_u64(l, v);
    p += 8;
    n -= 8;
  }
  auto l32 = static_cast<std::uint32_t>(l);
  while (n-- > 0) l32 = _mm_crc32_u8(l32, static_cast<unsigned char>(*p++));
  return l32 ^ 0xffffffffu;
}

bool have_sse42() {
  // (Initialized on first use: RocksDB may checksum before this file's static constructors run.)
  static const bool have = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return have;
}

}  // namespace

std::uint32_t crc32c_extend(std::uint32_t crc, const char* data, std::size_t n) {
  if (have_sse42()) return extend_sse42(crc, data, n);
  ExtendFn library = library_extend();
  return library ? library(crc, data, n) : 0;
}

bool check_crc32c(std::string& problem) {
  ExtendFn library = library_extend();
  if (!library) {
    problem = "librocksdb does not export rocksdb::crc32c::Extend";
    return false;
  }
  // Lengths around the 8-byte steps, chained and fresh, against the library.
  char buf[300];
  for (std::size_t i = 0; i < sizeof buf; ++i) buf[i] = static_cast<char>(i * 131 + 7);
  for (std::size_t n = 0; n <= sizeof buf; n += (n < 20 ? 1 : 37)) {
    for (std::uint32_t seed : {0u, 0x12345678u}) {
      if (crc32c_extend(seed, buf, n) != library(seed, buf, n)) {
        problem = "CRC32C differs from librocksdb's for " + std::to_string(n) + " bytes";
        return false;
      }
    }
  }
  return true;
}

}  // namespace berth::store

namespace rocksdb::crc32c {

// RocksDB's own declaration (util/crc32c.h): the crc32c of A followed by data[0, n), given
// init_crc, the crc32c of A.
std::uint32_t Extend(std::uint32_t init_crc, const char* data, std::size_t n) {
  return berth::store::crc32c_extend(init_crc, data, n);
}

}  // namespace rocksdb::crc32c
