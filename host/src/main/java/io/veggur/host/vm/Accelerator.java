package io.veggur.host.vm;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Chooses KVM or TCG. "/dev/kvm opens" proves nothing: some hosts expose a KVM variant (e.g. PVM) on which stock
 * kernels crash. KVM is used only when the CPU advertises vmx or svm and a probe guest really boots under it.
 */
final class Accelerator {
    private static final Duration PROBE_TIMEOUT = Duration.ofSeconds(30);
    private static final String BOOTED = "Run /init as init process";

    private Accelerator() {}

    static String resolve(String requested, Path kernel, Path initrd) throws VmException {
        return switch (requested) {
            case "tcg" -> "tcg";
            case "kvm" -> {
                String problem = kvmProblem();
                if (problem != null) {
                    throw new VmException("--accel kvm is not usable here: " + problem + "; use --accel tcg");
                }
                yield "kvm";
            }
            case "auto" -> kvmProblem() == null && probeBoots(kernel, initrd) ? "kvm" : "tcg";
            default -> throw new VmException("unknown accelerator '" + requested + "' (use auto, kvm or tcg)");
        };
    }

    private static String kvmProblem() {
        if (!Files.isReadable(Path.of("/dev/kvm")) || !Files.isWritable(Path.of("/dev/kvm"))) {
            return "/dev/kvm is missing or not accessible";
        }
        try {
            String flags = Files.readString(Path.of("/proc/cpuinfo"));
            if (!flags.matches("(?s).*\\bflags\\s*:.*\\b(vmx|svm)\\b.*")) {
                return "the host CPU advertises neither vmx nor svm";
            }
        } catch (IOException e) {
            return "cannot read /proc/cpuinfo";
        }
        return null;
    }

    /** Boots the kernel under KVM with the console on stdout and waits for the kernel to hand over to init. */
    private static boolean probeBoots(Path kernel, Path initrd) {
        List<String> command = new ArrayList<>(List.of("qemu-system-x86_64", "-machine", "q35", "-accel", "kvm",
                "-cpu", "host", "-m", "256M", "-display", "none", "-nodefaults", "-no-reboot", "-serial", "stdio",
                "-kernel", kernel.toString(), "-append", "console=ttyS0 panic=-1"));
        if (initrd != null) {
            command.addAll(List.of("-initrd", initrd.toString()));
        }
        Process probe = null;
        try {
            probe = new ProcessBuilder(command).redirectErrorStream(true).start();
            Process running = probe;
            var reader = new BufferedReader(new InputStreamReader(running.getInputStream()));
            var booted = new CompletableFuture<Boolean>();
            Thread.ofVirtual().start(() -> {
                try {
                    for (String line; (line = reader.readLine()) != null; ) {
                        if (line.contains(BOOTED)) {
                            booted.complete(true);
                            return;
                        }
                    }
                } catch (IOException ignored) {
                    // treated as "did not boot"
                }
                booted.complete(false);
            });
            return booted.get(PROBE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            return false;
        } finally {
            if (probe != null) {
                probe.destroyForcibly();
            }
        }
    }
}
