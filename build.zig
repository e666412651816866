//! Builds libchunks (shared library) and the standalone pipeline binary
//! from lib/*.c with `python -m ziglang build`. Written for Zig 0.15.1 (the
//! version pinned in pyproject.toml). Cross targets: -Dtarget=x86_64-windows-gnu
//! gives libchunks.dll, -Dtarget=aarch64-macos libchunks.dylib.
const std = @import("std");
const builtin = @import("builtin");

comptime {
    const want = std.SemanticVersion{ .major = 0, .minor = 15, .patch = 1 };
    if (builtin.zig_version.order(want) != .eq)
        @compileError("build.zig is written for Zig 0.15.1 (pip install ziglang==0.15.1)");
}

/// The C flags of every build: lib/cflags.txt (setup.py and the tests read it too).
fn cFlags(b: *std.Build) ![]const []const u8 {
    const text = try b.build_root.handle.readFileAlloc(b.allocator, "lib/cflags.txt", 4096);
    var list: std.ArrayList([]const u8) = .empty;
    var words = std.mem.tokenizeAny(u8, text, " \t\r\n");
    while (words.next()) |word| try list.append(b.allocator, word);
    return list.items;
}

fn librarySources(b: *std.Build) ![]const []const u8 {
    var list: std.ArrayList([]const u8) = .empty;
    var dir = try b.build_root.handle.openDir("lib", .{ .iterate = true });
    defer dir.close();
    var it = dir.iterate();
    while (try it.next()) |entry| {
        if (entry.kind != .file or !std.mem.endsWith(u8, entry.name, ".c")) continue;
        if (std.mem.eql(u8, entry.name, "main.c")) continue;
        try list.append(b.allocator, b.dupe(entry.name));
    }
    std.mem.sort([]const u8, list.items, {}, struct {
        fn lt(_: void, a: []const u8, x: []const u8) bool {
            return std.mem.lessThan(u8, a, x);
        }
    }.lt);
    return list.items;
}

fn cModule(b: *std.Build, target: std.Build.ResolvedTarget, optimize: std.builtin.OptimizeMode, sources: []const []const u8, flags: []const []const u8, with_main: bool) *std.Build.Module {
    const module = b.createModule(.{ .target = target, .optimize = optimize, .link_libc = true });
    module.addCSourceFiles(.{ .root = b.path("lib"), .files = sources, .flags = flags });
    if (with_main) module.addCSourceFiles(.{ .root = b.path("lib"), .files = &.{"main.c"}, .flags = flags });
    return module;
}

pub fn build(b: *std.Build) !void {
    // baseline CPU by default: the library must run on any machine of the target arch
    const target = b.standardTargetOptions(.{ .default_target = .{ .cpu_model = .baseline } });
    const optimize = b.standardOptimizeOption(.{ .preferred_optimize_mode = .ReleaseFast });
    const sources = try librarySources(b);
    const flags = try cFlags(b);

    // Windows has no "lib" prefix convention; the package looks for libchunks.dll.
    const lib_name = if (target.result.os.tag == .windows) "libchunks" else "chunks";
    const lib = b.addLibrary(.{
        .name = lib_name,
        .linkage = .dynamic,
        .root_module = cModule(b, target, optimize, sources, flags, false),
    });
    b.installArtifact(lib);

    const exe = b.addExecutable(.{
        .name = "slopfast-pipeline",
        .root_module = cModule(b, target, optimize, sources, flags, true),
    });
    b.installArtifact(exe);
}
