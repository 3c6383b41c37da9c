using System.Net.Sockets;
using HostVM.Networking;
using HostVM.Networking.Switch;
using HostVM.Networking.Tap;
using HostVM.Networking.UserNet;

namespace HostVM.Vmm;

/// <summary>
/// The backend a NIC's <c>host_dev_name</c> names: <c>user</c> or <c>user:hostfwd=tcp::8080-:80,hostfwd=...,host-loopback=on</c>
/// (user-mode NAT; the gateway reaches the host's 127.0.0.1 only with host-loopback=on), <c>switch:NAME</c>
/// (a HostVM switch in the runtime directory), or anything else: a TAP interface of that name, as in Firecracker.
/// </summary>
public sealed record NetworkBackendSpec(NetworkBackendKind Kind, string Name, IReadOnlyList<HostForward> Forwards, bool HostLoopback = false)
{
    public const int MaxInterfaceName = 15; // IFNAMSIZ - 1

    public static NetworkBackendSpec Parse(string hostDevName)
    {
        ArgumentNullException.ThrowIfNull(hostDevName);
        if (hostDevName == "user" || hostDevName.StartsWith("user:", StringComparison.Ordinal))
        {
            var forwards = new List<HostForward>();
            bool hostLoopback = false;
            string rest = hostDevName.Length > 5 ? hostDevName[5..] : string.Empty;
            foreach (var item in rest.Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                if (item is "host-loopback=on" or "host-loopback=off")
                {
                    hostLoopback = item.EndsWith("on", StringComparison.Ordinal);
                    continue;
                }

                if (!item.StartsWith("hostfwd=", StringComparison.Ordinal))
                {
                    throw new VmmFault($"host_dev_name {hostDevName}: user networking takes only hostfwd=PROTO:[HOSTADDR]:PORT-[GUESTADDR]:PORT and host-loopback=on|off items, not '{item}'.");
                }

                try
                {
                    forwards.Add(HostForward.Parse(item["hostfwd=".Length..]));
                }
                catch (FormatException e)
                {
                    throw new VmmFault($"host_dev_name {hostDevName}: {item}: {e.Message}");
                }
            }

            return new(NetworkBackendKind.User, "user", forwards, hostLoopback);
        }

        if (hostDevName.StartsWith("switch:", StringComparison.Ordinal))
        {
            string name = hostDevName["switch:".Length..];
            try
            {
                SwitchLocation.ValidateName(name);
            }
            catch (ArgumentException e)
            {
                throw new VmmFault($"host_dev_name {hostDevName}: {e.Message}");
            }

            return new(NetworkBackendKind.Switch, name, []);
        }

        if (hostDevName.Length is 0 or > MaxInterfaceName || hostDevName.Any(c => c is '/' or ':' or <= ' ' or > '~'))
        {
            throw new VmmFault($"host_dev_name '{hostDevName}': not a TAP interface name (1-{MaxInterfaceName} printable characters, no '/' or ':'), 'user[:hostfwd=...]' or 'switch:NAME'.");
        }

        return new(NetworkBackendKind.Tap, hostDevName, []);
    }

    /// <summary>Opens the backend (binds sockets, opens the TAP device).</summary>
    public IPacketPort Open()
    {
        try
        {
            return Kind switch
            {
                NetworkBackendKind.Switch => SwitchPort.Open(Name),
                NetworkBackendKind.Tap => TapPort.Open(Name),
                _ => new UserNetwork(new UserNetworkOptions { HostForwards = Forwards, Egress = EgressPolicy.UserMode(HostLoopback) }),
            };
        }
        catch (Exception e) when (e is IOException or SocketException or ArgumentException or UnauthorizedAccessException or InvalidOperationException)
        {
            throw new VmmFault($"network backend {this}: {e.Message}");
        }
    }

    public override string ToString() => Kind switch
    {
        NetworkBackendKind.Switch => $"switch:{Name}",
        NetworkBackendKind.Tap => Name,
        _ => Forwards.Count == 0 && !HostLoopback
            ? "user"
            : "user:" + string.Join(',', Forwards.Select(f => $"hostfwd={f}").Concat(HostLoopback ? ["host-loopback=on"] : [])),
    };
}
