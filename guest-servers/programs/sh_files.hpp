// The shell's file commands (built-ins; see sh_files.cpp).
#pragma once

namespace sh_files {

void ls(int argc, char** argv);
void cat(int argc, char** argv);
void mkdir(int argc, char** argv);
void rmdir(int argc, char** argv);
void rm(int argc, char** argv);
void mv(int argc, char** argv);
void cp(int argc, char** argv);
void df(int argc, char** argv);
void sync(int argc, char** argv);
// Writes text to path: replaces the file, or appends when `append` (echo > / >>).
void write_to(const char* path, const char* text, bool append);

}  // namespace sh_files
