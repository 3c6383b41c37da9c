using HostVM.Host.Api;
using HostVM.Host.Inventory;
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
/// as the host) unless the host's admin allows that destination (<see cref="SetEgress"/>).
/// </summary>
public sealed class NetworkManager : IDisposable
{
    private readonly HostSettings _settings;
    private readonly InventoryStore _inventory;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, SwitchUplink> _uplinks = [];
    private readonly Dictionary<string, UserNetwork> _nats = [];

    public NetworkManager(HostSettings settings, InventoryStore inventory)
    {
        _settings = settings;
        _inventory = inventory;
        foreach (var network in inventory.Networks())
        {
            Prepare(network);
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

    private static NetworkView View(NetworkRecord n, IReadOnlyList<VmRecord> vms) =>
        new(n.Name, n.Project, n.Nat, [.. vms.Where(v => v.Networks.Any(x => x.Network == n.Name)).Select(v => v.Name)], n.CreatedAt, n.EgressAllow);

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
