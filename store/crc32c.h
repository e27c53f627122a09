// CRC32C (Castagnoli) in hardware where the CPU has SSE4.2, standing in for librocksdb's
// portable software loop (see crc32c.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace berth::store {

// The crc32c of A followed by data[0, n), given crc, the crc32c of A (RocksDB's Extend).
std::uint32_t crc32c_extend(std::uint32_t crc, const char* data, std::size_t n);

// True when crc32c_extend agrees with librocksdb's own CRC32C; else why not.
bool check_crc32c(std::string& problem);

}  // namespace berth::store
