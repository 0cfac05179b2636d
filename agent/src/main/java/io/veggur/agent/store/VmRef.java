package io.veggur.agent.store;

/**
 * How a principal names a VM: {@code owner/name}. VM names are unique per owner only, so a tenant's own VMs can be
 * named without the owner ({@code web} is {@code alice/web} for alice), and another tenant's VM always carries its
 * owner. Both parts are validated, so a reference can never be a path ({@code ..}, {@code /}) or empty.
 */
public record VmRef(String owner, String name) {
    public VmRef {
        Names.tenant(owner);
        Names.vm(name);
    }

    /** Parses {@code owner/name}, or {@code name} for one of a tenant's own VMs (the operator must name the owner). */
    public static VmRef parse(String text, Principal who) {
        if (text == null) {
            throw new IllegalArgumentException("no VM named");
        }
        int slash = text.indexOf('/');
        if (slash >= 0) {
            return new VmRef(text.substring(0, slash), text.substring(slash + 1));
        }
        return switch (who) {
            case Tenant tenant -> new VmRef(tenant.name(), text);
            case Operator operator -> throw new IllegalArgumentException(
                    "name the VM's owner too, as OWNER/" + text);
        };
    }

    @Override
    public String toString() {
        return owner + "/" + name;
    }
}
