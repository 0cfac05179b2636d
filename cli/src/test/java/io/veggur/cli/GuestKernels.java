package io.veggur.cli;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Test guests with the kernel of another Debian suite (bullseye 5.10, bookworm 6.1, trixie 6.12), built by
 * {@code guest/build.sh --suite NAME} into the usual guest cache. The first build of a suite downloads its lists and
 * kernel package; afterwards a build only checks the cache, and each suite is built at most once per JVM. Failures
 * are unchecked so that a VM spec lambda can call {@link #build}.
 */
final class GuestKernels {
    /** A built guest: its kernel, initramfs and kernel release (as uname -r shows it). */
    record Kernel(String suite, Path vmlinuz, Path initrd, String release) {
    }

    private static final long BUILD_TIMEOUT_MINUTES = 10;
    private static final Map<String, Kernel> BUILT = new ConcurrentHashMap<>();

    private GuestKernels() {
    }

    static Kernel build(String suite) {
        return BUILT.computeIfAbsent(suite, GuestKernels::run);
    }

    private static Kernel run(String suite) {
        try {
            return runScript(suite);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while building the " + suite + " guest", e);
        }
    }

    private static Kernel runScript(String suite) throws IOException, InterruptedException {
        Path script = repositoryRoot().resolve("guest/build.sh");
        Path out = Files.createTempFile("veggur-guest-build-", ".out");
        Path log = Files.createTempFile("veggur-guest-build-", ".log");
        try {
            Process process = new ProcessBuilder(List.of(script.toString(), "--suite", suite))
                    .redirectOutput(out.toFile()).redirectError(log.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
            if (!process.waitFor(BUILD_TIMEOUT_MINUTES, TimeUnit.MINUTES)) {
                process.destroyForcibly();
                throw new IOException(script + " --suite " + suite + " took more than " + BUILD_TIMEOUT_MINUTES
                        + " min");
            }
            List<String> lines = Files.readAllLines(out, StandardCharsets.UTF_8);
            if (process.exitValue() != 0 || lines.isEmpty()) {
                throw new IOException(script + " --suite " + suite + " failed (exit " + process.exitValue() + "):\n"
                        + Files.readString(log));
            }
            Path directory = Path.of(lines.getLast());
            return new Kernel(suite, directory.resolve("vmlinuz"), directory.resolve("initramfs.cpio.gz"),
                    Files.readString(directory.resolve("kernel-release")).strip());
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(log);
        }
    }

    /** The checkout holding this module: the nearest directory above the working directory with guest/build.sh. */
    private static Path repositoryRoot() throws IOException {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.isExecutable(dir.resolve("guest/build.sh"))) {
                return dir;
            }
        }
        throw new IOException("no guest/build.sh above " + Path.of("").toAbsolutePath());
    }
}
