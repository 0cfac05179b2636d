package io.veggur.cli;

import io.veggur.agent.client.AgentException;
import io.veggur.agent.container.ContainerException;
import io.veggur.host.vm.VmException;
import io.veggur.vmi.VmiException;
import java.io.IOException;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code veggur} command. Every failure a user can cause ends in one line on stderr and a non-zero exit, never
 * a stack trace (set VEGGUR_DEBUG=1 to see one).
 */
@Command(name = "veggur", mixinStandardHelpOptions = true, version = "veggur 0.1.0",
        description = "Self-service introspection of KVM/QEMU virtual machines.",
        subcommands = {AgentCommand.class, TenantCommand.class, VmCommand.class, GrantCommand.Grant.class,
                GrantCommand.Revoke.class, GrantCommand.ListGrants.class, EnvCommand.class, VmiCommand.class,
                AuditCommand.class, HostCommand.class, RelayCommand.class, DemoCommand.class})
public final class VeggurCommand {
    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    static CommandLine commandLine() {
        CommandLine commandLine = new CommandLine(new VeggurCommand());
        commandLine.setExecutionExceptionHandler(VeggurCommand::report);
        return commandLine;
    }

    private static int report(Exception e, CommandLine commandLine, CommandLine.ParseResult parseResult) {
        PrintWriter err = commandLine.getErr();
        String message = switch (e) {
            case VmException vm -> vm.getMessage();
            case AgentException refused -> "the agent refused (" + refused.status() + "): " + refused.getMessage();
            case ContainerException container -> container.getMessage();
            case VmiException vmi -> "the introspection server refused: " + vmi.getMessage() + " (" + vmi.code() + ")";
            case java.nio.file.NoSuchFileException missing -> "not found: " + missing.getFile()
                    + (missing.getReason() == null ? "" : " (" + missing.getReason() + ")");
            case java.nio.file.AccessDeniedException denied -> "permission denied: " + denied.getFile()
                    + (denied.getReason() == null ? "" : " (" + denied.getReason() + ")");
            case IOException io -> io.getMessage();
            case IllegalArgumentException bad -> bad.getMessage();
            default -> "unexpected " + e.getClass().getSimpleName() + ": " + e.getMessage();
        };
        err.println("veggur: error: " + message);
        if (System.getenv("VEGGUR_DEBUG") != null) {
            e.printStackTrace(err);
        }
        err.flush();
        return 1;
    }
}
