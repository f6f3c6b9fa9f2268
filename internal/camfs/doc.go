// Package camfs reads a docked camera's file system: it lists the recordings
// (Walk) and opens one for a single sequential read (Open). It owns nothing
// on the camera and never changes it.
//
// Camera media is hostile input. A file system on a USB stick, an SD card or
// a Wi-Fi offload folder can hold any name (spaces, newlines, leading dashes,
// 255 bytes, bytes that are not UTF-8), symbolic links pointing anywhere,
// FIFOs that block an open, sockets, device nodes whose open has side effects,
// directory loops from a corrupt FAT, and files that grow while they are read.
//
// # Invariants
//
//   - Nothing below root is ever resolved through a symbolic link. Every
//     directory and file is opened with openat relative to its parent's
//     descriptor and O_NOFOLLOW, so a name can only refer to an entry inside
//     root; a path that would climb out ("..", absolute) is refused
//     (ErrEscapes). root itself is the caller's path and is resolved normally:
//     it is trusted configuration, not camera content.
//   - Only regular files are ever opened for reading. FIFOs, sockets and
//     devices are refused by their type before any open; the open itself uses
//     O_NONBLOCK and O_NOCTTY and is checked again with fstat, so an entry
//     swapped for a FIFO or device between the listing and the open neither
//     blocks nor becomes our controlling terminal, and is refused
//     (ErrNotRegular).
//   - A regular file with more than one hard link is refused by name, in
//     the walk and again at open (ErrHardLinked): camera file systems have
//     no hard links, and on a folder source a second name is how a file from
//     outside the camera (the host key) would be slipped in.
//   - Nothing is written to the camera. Files and directories are opened
//     read-only and, where the kernel allows it (we own the files or hold
//     CAP_FOWNER), with O_NOATIME so even access times stay as they were.
//   - Paths are raw bytes. Rel values are the names as the file system holds
//     them, joined with '/'; DisplayPath gives the lossless, reversible UTF-8
//     form for the ledger and for people.
//
// Linux only: it relies on openat, fstatat, getdents and posix_fadvise
// through golang.org/x/sys/unix.
package camfs
