using System.Globalization;
using System.Net;
using HostVM.Host.Api;
using HostVM.Host.Inventory;
using HostVM.Networking;
using HostVM.Networking.Switch;
using HostVM.Networking.UserNet;
using HostVM.Vmm;

namespace HostVM.Host.Networks;

/// <summary>
/// Named host networks. Each is a HostVM switch in the daemon's runtime directory
/// (<c>RuntimeDir/switches/NAME</c>): the VMMs on it attach their NICs as switch ports, so VMs on one
/// network reach each other and frames never cross into another network's directory. A network with
/// <c>nat</c> has a user-mode NAT in the daemon attached as one more port (DHCP from 10.0.2.15, gateway
/// 10.0.2.2): its guests reach the public internet through the daemon's sockets, and nothing that is
/// the host or behind it (loopback, the host's addresses, private and link-local ranges, the gateway
/// as the host) unless the host's admin allows that destination (<see cref="SetEgress"/>). A NAT network may also
/// forward host ports into its VMs (<see cref="AddForward"/>).
/// </summary>
public sealed class NetworkManager : IDisposable
{
    /// <summary>
    /// Forwards one network holds at most: each is a host socket that a project's operator may open, so a project
    /// cannot hold more of the host's ports than this per network (and its networks are bounded by its quota).
    /// </summary>
    public const int MaxForwardsPerNetwork = 32;

    private readonly HostSettings _settings;
    private readonly InventoryStore _inventory;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, SwitchUplink> _uplinks = [];
    private readonly Dictionary<string, UserNetwork> _nats = [];

    public NetworkManager(HostSettings settings, InventoryStore inventory)
    {
        _settings = settings;
        _inventory = inventory;
        var vms = inventory.Vms();
        foreach (var network in inventory.Networks())
        {
            // Forwards to VMs deleted while the daemon was down (it removes them when it deletes a VM) go now.
            var kept = network.Forwards.Where(f => NicOf(vms.FirstOrDefault(v => v.Id == f.VmId), network.Name) is not null).ToList();
            var current = network;
            if (kept.Count != network.Forwards.Count)
            {
                current = network with { Forwards = kept };
                inventory.PutNetwork(current, $"network {network.Name}: {network.Forwards.Count - kept.Count} forwards to deleted VMs removed");
            }

            Prepare(current);
        }
    }

    public IReadOnlyList<NetworkView> List()
    {
        var vms = _inventory.Vms();
        return [.. _inventory.Networks().Select(n => View(n, vms))];
    }

    public NetworkView Get(string name)
    {
        var network = _inventory.Network(name) ?? throw ApiProblem.NotFound("network", name);
        return View(network, _inventory.Vms());
    }

    private NetworkView View(NetworkRecord n, IReadOnlyList<VmRecord> vms) =>
        new(n.Name, n.Project, n.Nat, [.. vms.Where(v => v.Networks.Any(x => x.Network == n.Name)).Select(v => v.Name)], n.CreatedAt, n.EgressAllow, ForwardViews(n, vms));

    public NetworkView Create(CreateNetworkRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        string name = Names.Check(request.Name, "name");
        var network = new NetworkRecord { Name = name, Project = request.Project ?? ProjectRecord.Default, Nat = request.Nat ?? false, CreatedAt = DateTimeOffset.UtcNow };
        lock (_lock)
        {
            if (_inventory.Network(name) is not null)
            {
                throw ApiProblem.Conflict($"A network named '{name}' exists.");
            }

            AdmitToQuota(network);
            Prepare(network);
            try
            {
                _inventory.PutNetwork(network, $"network {name} created" + (network.Nat ? " with a NAT uplink" : string.Empty));
            }
            catch
            {
                CloseUplink(name);
                throw;
            }
        }

        return View(network, []);
    }

    /// <summary>A network's port forwards.</summary>
    public IReadOnlyList<ForwardView> Forwards(string name)
    {
        var network = _inventory.Network(name) ?? throw ApiProblem.NotFound("network", name);
        return ForwardViews(network, _inventory.Vms());
    }

    /// <summary>
    /// Opens a host port into a VM of a NAT network and records it. The VM must be of the network's project and have a NIC on
    /// it (its connections go to that NIC's DHCP lease, looked up as each arrives). A project's operator listens on loopback
    /// at an unprivileged port; another address or a port below 1024 is the host's admin's (<paramref name="hostAdmin"/>),
    /// as binding one exposes the host or takes a port the host's own services expect.
    /// </summary>
    public ForwardView AddForward(string name, AddForwardRequest request, bool hostAdmin)
    {
        ArgumentNullException.ThrowIfNull(request);
        var protocol = ParseProtocol(request.Protocol ?? "tcp", "protocol");
        var address = IPAddress.Loopback;
        if (request.Address is not null &&
            (!IPAddress.TryParse(request.Address, out address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork))
        {
            throw ApiProblem.BadRequest($"address '{request.Address}': not an IPv4 address (such as 127.0.0.1).", "address");
        }

        int hostPort = request.HostPort ?? 0;
        if (hostPort is < 0 or > 65535)
        {
            throw ApiProblem.BadRequest($"host_port {hostPort}: must be 1-65535, or 0 for any free port.", "host_port");
        }

        if (request.GuestPort is not (>= 1 and <= 65535))
        {
            throw ApiProblem.BadRequest($"guest_port {request.GuestPort?.ToString(CultureInfo.InvariantCulture) ?? "(none)"}: must be 1-65535.", "guest_port");
        }

        if (!hostAdmin && !IPAddress.IsLoopback(address))
        {
            throw Forbidden($"Listening on {address} exposes the host beyond itself: the host's admin only. Leave address out (127.0.0.1), or ask the host's admin.");
        }

        if (!hostAdmin && hostPort is > 0 and < 1024)
        {
            throw Forbidden($"Host port {hostPort} is a privileged port (below 1024): the host's admin only. Choose 1024 or above, or 0 for any free port.");
        }

        if (string.IsNullOrEmpty(request.Vm))
        {
            throw ApiProblem.BadRequest("vm: the VM to forward to is missing.", "vm");
        }

        lock (_lock)
        {
            var network = _inventory.Network(name) ?? throw ApiProblem.NotFound("network", name);
            if (!network.Nat || !_nats.TryGetValue(name, out var nat))
            {
                throw ApiProblem.BadRequest($"Network '{name}' has no NAT: forwards reach its VMs through the NAT. Create a network with --nat for them.", "network");
            }

            var vm = _inventory.Vm(request.Vm) is { } found && found.Project == network.Project ? found : throw ApiProblem.NotFound("VM", request.Vm);
            var nic = NicOf(vm, name) ?? throw ApiProblem.BadRequest($"VM '{vm.Name}' has no NIC on network '{name}'; a forward reaches a VM through its NIC there.", "vm");
            if (network.Forwards.Count >= MaxForwardsPerNetwork)
            {
                throw ApiProblem.Conflict($"Network '{name}' has {network.Forwards.Count} forwards, the most a network may have; remove one first.");
            }

            string protocolName = ProtocolName(protocol);
            if (hostPort != 0 && network.Forwards.Any(f => f.Protocol == protocolName && f.HostPort == hostPort))
            {
                throw ApiProblem.Conflict($"Network '{name}' already forwards {protocolName} port {hostPort}; remove that forward first.");
            }

            Networking.UserNet.HostForward bound;
            try
            {
                bound = nat.AddForward(new Networking.UserNet.HostForward(protocol, address, hostPort, null, request.GuestPort.Value) { GuestMac = MacAddress.Parse(nic.Mac) });
            }
            catch (InvalidOperationException)
            {
                throw ApiProblem.Conflict($"{protocolName} {address}:{hostPort} is in use on the host (by another program or forward); choose another port, or 0 for any free one.");
            }

            var forward = new NetworkForward { Protocol = protocolName, Address = address.ToString(), HostPort = bound.HostPort, VmId = vm.Id, GuestPort = bound.GuestPort };
            try
            {
                _inventory.PutNetwork(network with { Forwards = [.. network.Forwards, forward] }, $"network {name}: forward {Describe(forward)} to {vm.Name}:{forward.GuestPort}");
            }
            catch
            {
                nat.RemoveForward(protocol, bound.HostPort);
                throw;
            }

            return new ForwardView(forward.Protocol, forward.Address, forward.HostPort, vm.Name, forward.GuestPort, Listening: true);
        }
    }

    /// <summary>Closes and forgets the forward of <paramref name="protocolText"/> host port <paramref name="hostPort"/>; its open connections finish.</summary>
    public void RemoveForward(string name, string protocolText, int hostPort)
    {
        var protocol = ParseProtocol(protocolText, "protocol");
        string protocolName = ProtocolName(protocol);
        lock (_lock)
        {
            var network = _inventory.Network(name) ?? throw ApiProblem.NotFound("network", name);
            var forward = network.Forwards.FirstOrDefault(f => f.Protocol == protocolName && f.HostPort == hostPort)
                ?? throw ApiProblem.NotFound("forward", $"{protocolName}/{hostPort.ToString(CultureInfo.InvariantCulture)} on network {name}");
            _inventory.PutNetwork(network with { Forwards = [.. network.Forwards.Where(f => f != forward)] }, $"network {name}: forward {Describe(forward)} removed");
            if (_nats.TryGetValue(name, out var nat))
            {
                nat.RemoveForward(protocol, hostPort);
            }
        }
    }

    /// <summary>A VM was deleted: its forwards go with it (their host ports close).</summary>
    public void RemoveForwardsOf(string vmId)
    {
        lock (_lock)
        {
            foreach (var network in _inventory.Networks().Where(n => n.Forwards.Any(f => f.VmId == vmId)))
            {
                var gone = network.Forwards.Where(f => f.VmId == vmId).ToList();
                _inventory.PutNetwork(network with { Forwards = [.. network.Forwards.Except(gone)] }, $"network {network.Name}: forwards {string.Join(", ", gone.Select(Describe))} removed with their VM");
                if (_nats.TryGetValue(network.Name, out var nat))
                {
                    foreach (var forward in gone)
                    {
                        nat.RemoveForward(ParseProtocol(forward.Protocol, "protocol"), forward.HostPort);
                    }
                }
            }
        }
    }

    private IReadOnlyList<ForwardView> ForwardViews(NetworkRecord network, IReadOnlyList<VmRecord> vms)
    {
        if (network.Forwards.Count == 0)
        {
            return [];
        }

        var bound = _nats.TryGetValue(network.Name, out var nat) ? nat.BoundForwards : [];
        return [.. network.Forwards.Select(f => new ForwardView(
            f.Protocol, f.Address, f.HostPort, vms.FirstOrDefault(v => v.Id == f.VmId)?.Name ?? f.VmId, f.GuestPort,
            bound.Any(b => ProtocolName(b.Protocol) == f.Protocol && b.HostPort == f.HostPort)))];
    }

    private static VmNetwork? NicOf(VmRecord? vm, string network) => vm?.Networks.FirstOrDefault(n => n.Network == network);

    private static Networking.UserNet.HostForwardProtocol ParseProtocol(string text, string field) => text switch
    {
        "tcp" => Networking.UserNet.HostForwardProtocol.Tcp,
        "udp" => Networking.UserNet.HostForwardProtocol.Udp,
        _ => throw ApiProblem.BadRequest($"{field} '{text}': tcp or udp.", field),
    };

    private static string ProtocolName(Networking.UserNet.HostForwardProtocol protocol) =>
        protocol == Networking.UserNet.HostForwardProtocol.Udp ? "udp" : "tcp";

    private static string Describe(NetworkForward f) => string.Create(CultureInfo.InvariantCulture, $"{f.Protocol} {f.Address}:{f.HostPort}");

    private static ApiProblem Forbidden(string detail) => new(403, "forbidden", "The token's role may not do this", detail);

    /// <summary>
    /// A project at its max_networks answers 409 quota-exceeded, in the shape VMs get from QuotaCheck. Checked
    /// under the manager's lock, with the count read there, so two creates at once cannot both take the last one.
    /// </summary>
    private void AdmitToQuota(NetworkRecord network)
    {
        if (_inventory.Project(network.Project)?.Quotas.MaxNetworks is not { } max)
        {
            return;
        }

        int used = _inventory.Networks().Count(n => n.Project == network.Project);
        if (used + 1 > max)
        {
            string reason = $"project '{network.Project}' has {used} of {max} networks; this network needs 1 more.";
            throw ApiProblem.QuotaExceeded(
                $"Network '{network.Name}' does not fit in project '{network.Project}': {reason} Raise the quota (hostvm project set --max-networks) or delete a network.",
                new Dictionary<string, string[]> { ["max_networks"] = [reason] });
        }
    }

    /// <summary>Replaces the destinations a NAT network's guests may reach beyond the default policy; new flows follow at once.</summary>
    public NetworkView SetEgress(string name, IReadOnlyList<string> allow)
    {
        ArgumentNullException.ThrowIfNull(allow);
        var rules = ParseRules(allow);
        lock (_lock)
        {
            var network = _inventory.Network(name) ?? throw ApiProblem.NotFound("network", name);
            if (!network.Nat)
            {
                throw ApiProblem.Conflict($"Network '{name}' has no NAT: its guests reach nothing outside it, so there is nothing to allow.");
            }

            network = network with { EgressAllow = [.. rules.Select(r => r.ToString())] };
            _inventory.PutNetwork(network, $"network {name}: egress allows {(rules.Count == 0 ? "nothing beyond the public internet" : string.Join(' ', network.EgressAllow))}");
            if (_nats.TryGetValue(name, out var nat))
            {
                nat.Egress = EgressPolicy.Restricted(rules);
            }

            return View(network, _inventory.Vms());
        }
    }

    private static List<EgressRule> ParseRules(IReadOnlyList<string> allow)
    {
        if (allow.Count > 256)
        {
            throw ApiProblem.BadRequest($"allow: {allow.Count} destinations; at most 256.", "allow");
        }

        var rules = new List<EgressRule>();
        foreach (string text in allow)
        {
            try
            {
                rules.Add(EgressRule.Parse(text ?? string.Empty));
            }
            catch (FormatException e)
            {
                throw ApiProblem.BadRequest($"allow: {e.Message}", "allow");
            }
        }

        return rules;
    }

    public void Delete(string name)
    {
        lock (_lock)
        {
            var network = _inventory.Network(name) ?? throw ApiProblem.NotFound("network", name);
            var users = _inventory.Vms().Where(v => v.Networks.Any(n => n.Network == name)).Select(v => v.Name).ToList();
            if (users.Count > 0)
            {
                throw ApiProblem.Conflict($"Network '{name}' is used by {string.Join(", ", users)}; delete those VMs first.");
            }

            _inventory.DeleteNetwork(network);
            CloseUplink(name);
            string dir = SwitchLocation.SwitchDirectory(name, _settings.RuntimeDir);
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    /// <summary>The switch directory exists (so the first VMM's port finds it), and the NAT uplink runs if the network has one.</summary>
    private void Prepare(NetworkRecord network)
    {
        OwnerOnly.CreateDirectory(SwitchLocation.SwitchDirectory(network.Name, _settings.RuntimeDir)); // its ports' sockets: the daemon's user's alone
        if (network.Nat && !_uplinks.ContainsKey(network.Name))
        {
            // Tenants share the host: their NAT refuses the host and what lies behind it (EgressPolicy).
            var nat = new UserNetwork(new UserNetworkOptions { Egress = EgressPolicy.Restricted(ParseRules(network.EgressAllow)) });
            _uplinks[network.Name] = SwitchUplink.Open(network.Name, nat, _settings.RuntimeDir);
            _nats[network.Name] = nat;
            var vms = _inventory.Vms();
            foreach (var forward in network.Forwards)
            {
                if (NicOf(vms.FirstOrDefault(v => v.Id == forward.VmId), network.Name) is not { } nic)
                {
                    continue;
                }

                try
                {
                    nat.AddForward(new Networking.UserNet.HostForward(ParseProtocol(forward.Protocol, "protocol"), IPAddress.Parse(forward.Address), forward.HostPort, null, forward.GuestPort)
                    {
                        GuestMac = MacAddress.Parse(nic.Mac),
                    });
                }
                catch (InvalidOperationException e)
                {
                    // Another program took the port while the daemon was down: the forward stays recorded and shows listening: false.
                    Console.Error.WriteLine($"hostvm serve: network {network.Name}: forward {Describe(forward)} is not listening: {e.Message}");
                }
            }
        }
    }

    private void CloseUplink(string name)
    {
        _nats.Remove(name);
        if (_uplinks.Remove(name, out var uplink))
        {
            uplink.Dispose();
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var uplink in _uplinks.Values)
            {
                uplink.Dispose();
            }

            _uplinks.Clear();
            _nats.Clear();
        }
    }
}
