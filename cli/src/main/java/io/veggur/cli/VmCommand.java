package io.veggur.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code veggur vm ...}: a tenant's VMs, through the agent. A VM is {@code NAME} (one of yours) or
 * {@code OWNER/NAME} (one granted to you).
 */
@Command(name = "vm", description = "Create, start, stop, list and delete your VMs (through the agent).",
        mixinStandardHelpOptions = true,
        subcommands = {VmCommand.Create.class, VmCommand.ListVms.class, VmCommand.Show.class, VmCommand.Start.class,
                VmCommand.Stop.class, VmCommand.Delete.class})
final class VmCommand {
    static void print(JsonNode vm) {
        System.out.printf("%-20s %-9s %-8s %-6s %5d MiB %2d vCPU%n", vm.path("vm").asText(), vm.path("state").asText(),
                vm.path("relation").asText(), vm.path("role").asText(), vm.path("memoryMib").asInt(), vm.path("vcpus").asInt());
    }

    static int show(JsonNode vm, boolean json) {
        if (json) {
            System.out.println(Json.write(vm));
        } else {
            print(vm);
        }
        return 0;
    }

    @Command(name = "create", description = "Create a VM running the built-in guest, and boot it.")
    static final class Create implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Parameters(paramLabel = "NAME") String name;
        @Option(names = "--memory", defaultValue = "256M", paramLabel = "SIZE") String memory;
        @Option(names = "--vcpus", defaultValue = "1") int vcpus;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            long bytes = Sizes.parseSize(memory);
            if (bytes % (1 << 20) != 0) {
                throw new IllegalArgumentException("--memory must be a whole number of MiB");
            }
            JsonNode vm = connection.client().post("/v1/vms", Json.MAPPER.createObjectNode().put("name", name)
                    .put("memoryMib", bytes >> 20).put("vcpus", vcpus));
            return show(vm, json);
        }
    }

    @Command(name = "list", description = "List the VMs you own or were granted.")
    static final class ListVms implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            JsonNode vms = connection.client().get("/v1/vms");
            if (json) {
                System.out.println(Json.write(vms));
            } else {
                vms.forEach(VmCommand::print);
            }
            return 0;
        }
    }

    @Command(name = "show", description = "Show one VM.")
    static final class Show implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Parameters(paramLabel = "VM") String vm;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            return show(connection.client().get(AgentConnection.vmPath(vm)), json);
        }
    }

    @Command(name = "start", description = "Boot a stopped VM.")
    static final class Start implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Parameters(paramLabel = "VM") String vm;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            return show(connection.client().post(AgentConnection.vmPath(vm) + "/start", null), json);
        }
    }

    @Command(name = "stop", description = "Stop a VM; every introspection environment on it is removed first.")
    static final class Stop implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Parameters(paramLabel = "VM") String vm;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            return show(connection.client().post(AgentConnection.vmPath(vm) + "/stop", null), json);
        }
    }

    @Command(name = "delete", description = "Stop (if needed) and delete a VM with its grants.")
    static final class Delete implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Parameters(paramLabel = "VM") String vm;

        @Override
        public Integer call() throws Exception {
            connection.client().delete(AgentConnection.vmPath(vm));
            System.out.println("deleted " + vm);
            return 0;
        }
    }
}
