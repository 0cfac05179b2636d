package io.veggur.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.veggur.host.vm.GuestConsole;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A process listing ({@code vmi ps --json}) checked against the guest's own /proc, asked on its serial console. */
final class GuestProcesses {
    private static final Duration QUERY_TIMEOUT = Duration.ofSeconds(60);

    private GuestProcesses() {}

    /**
     * Processes that exist both before and after the listing must be listed with equal pid, ppid, uid and name;
     * everything listed must exist before or after. kworkers come and go at any time, so only they are exempt from
     * the second rule.
     */
    static void assertListingMatches(GuestConsole console, Callable<JsonNode> listing) throws Exception {
        Map<Integer, List<String>> before = groundTruth(console, "ps-before");
        JsonNode listed = listing.call();
        Map<Integer, List<String>> after = groundTruth(console, "ps-after");

        Map<Integer, JsonNode> byPid = new HashMap<>();
        for (JsonNode process : listed) {
            byPid.put(process.get("pid").asInt(), process);
        }
        int compared = 0;
        for (Map.Entry<Integer, List<String>> entry : before.entrySet()) {
            List<String> truth = entry.getValue();
            if (!truth.equals(after.get(entry.getKey()))) {
                continue;
            }
            JsonNode process = byPid.get(entry.getKey());
            assertThat(process).as("process %s %s is listed", entry.getKey(), truth).isNotNull();
            assertThat(process.get("ppid").asText()).as("ppid of %s", truth).isEqualTo(truth.get(0));
            assertThat(process.get("uid").asText()).as("uid of %s", truth).isEqualTo(truth.get(1));
            assertNameMatches(process.get("name").asText(), truth.get(3), process.get("kernelThread").asBoolean());
            compared++;
        }
        assertThat(compared).as("stable processes compared").isGreaterThan(40);
        for (JsonNode process : listed) {
            int pid = process.get("pid").asInt();
            if (!process.get("name").asText().startsWith("kworker/")) {
                assertThat(before.containsKey(pid) || after.containsKey(pid)).as("listed pid %d exists in the guest", pid).isTrue();
            }
        }
        Set<String> names = new HashSet<>();
        listed.forEach(p -> names.add(p.get("name").asText()));
        assertThat(names).contains("init", "veggur-idle-a", "veggur-idle-b", "veggur-threads", "veggur-marker");
    }

    /**
     * /proc/PID/comm is task->comm for user tasks. For kernel threads /proc shows more: the full name of a kthread
     * whose name did not fit comm's 15 characters, and a kworker's current workqueue after a dash.
     */
    private static void assertNameMatches(String listed, String proc, boolean kernelThread) {
        if (!kernelThread) {
            assertThat(listed).isEqualTo(proc);
            return;
        }
        assertThat(proc).as("kernel thread name").startsWith(listed);
        if (!proc.equals(listed)) {
            assertThat(listed.length() == 15 || proc.charAt(listed.length()) == '-')
                    .as("%s is %s cut to comm or with a workqueue suffix", proc, listed).isTrue();
        }
    }

    /** pid -> [ppid, uid, tgid, comm] from the guest's /proc. */
    private static Map<Integer, List<String>> groundTruth(GuestConsole console, String tag) throws Exception {
        Map<Integer, List<String>> processes = new HashMap<>();
        Pattern line = Pattern.compile("VEGGUR-PS (\\d+) (\\d+) (\\d+) (\\d+) (.*)");
        for (String text : console.query("veggur-truth ps", "VEGGUR-PS", tag, QUERY_TIMEOUT)) {
            Matcher m = line.matcher(text);
            if (m.matches()) {
                processes.put(Integer.parseInt(m.group(1)), List.of(m.group(2), m.group(3), m.group(4), m.group(5)));
            }
        }
        return processes;
    }
}
