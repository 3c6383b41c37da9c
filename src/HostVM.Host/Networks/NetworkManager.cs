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
/// 10.0.2.2): its guests reach the host and beyond through the daemon's sockets.
/// </summary>
public sealed class NetworkManager : IDisposable
{
    private readonly HostSettings _settings;
    private readonly InventoryStore _inventory;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, SwitchUplink> _uplinks = [];

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
        new(n.Name, n.Project, n.Nat, [.. vms.Where(v => v.Networks.Any(x => x.Network == n.Name)).Select(v => v.Name)], n.CreatedAt);

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
            _uplinks[network.Name] = SwitchUplink.Open(network.Name, new UserNetwork(), _settings.RuntimeDir);
        }
    }

    private void CloseUplink(string name)
    {
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
        }
    }
}
