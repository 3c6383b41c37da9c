using HostVM.Networking;
using HostVM.Networking.Switch;
using HostVM.Networking.UserNet;
using HostVM.Vmm;

namespace HostVM.Cli;

/// <summary>Reads the network backend a --net option names (user-mode NAT, a switch port or a TAP device) as the VMM's own spec.</summary>
public static class NetworkBackends
{
    public const string Keys = "user (hostfwd=, host-loopback=), switch=NAME, tap=IFNAME, mac=, [rx-|tx-]bw=, [rx-|tx-]ops= and their -burst";

    /// <exception cref="DeviceOptionException">The option is malformed; the message names it.</exception>
    public static NetworkBackendSpec Spec(KeyValueList list)
    {
        ArgumentNullException.ThrowIfNull(list);
        string? switchName = list.Get("switch");
        string? tap = list.Get("tap");
        var forwards = list.GetAll("hostfwd");
        int kinds = (list.Kind is null ? 0 : 1) + (switchName is null ? 0 : 1) + (tap is null ? 0 : 1);
        if (kinds != 1)
        {
            throw new DeviceOptionException($"--net {list.Text}: say which network, exactly one of: user, switch=NAME, tap=IFNAME.");
        }

        if (list.Kind is not null and not "user")
        {
            throw new DeviceOptionException($"--net {list.Text}: unknown network '{list.Kind}' (known: user, switch=NAME, tap=IFNAME).");
        }

        if (forwards.Count > 0 && list.Kind is null)
        {
            throw new DeviceOptionException($"--net {list.Text}: hostfwd= only works with user networking.");
        }

        // Like QEMU's -netdev user, but the gateway reaches the host's own 127.0.0.1 only when asked.
        bool hostLoopback = list.GetSwitch("host-loopback", false);
        if (hostLoopback && list.Kind is null)
        {
            throw new DeviceOptionException($"--net {list.Text}: host-loopback= only works with user networking.");
        }

        list.RejectUnknown(Keys);
        try
        {
            if (switchName is not null)
            {
                SwitchLocation.ValidateName(switchName);
                return new NetworkBackendSpec(NetworkBackendKind.Switch, switchName, []);
            }

            if (tap is not null)
            {
                // The VMM's rules for a TAP name (its spec reads any other name as one).
                return NetworkBackendSpec.Parse(tap) is { Kind: NetworkBackendKind.Tap } spec ? spec
                    : throw new DeviceOptionException($"--net {list.Text}: tap={tap} is not an interface name.");
            }

            var parsed = new List<HostForward>();
            foreach (var f in forwards)
            {
                try
                {
                    parsed.Add(HostForward.Parse(f));
                }
                catch (FormatException e)
                {
                    throw new DeviceOptionException($"--net {list.Text}: hostfwd={f}: {e.Message}");
                }
            }

            return new NetworkBackendSpec(NetworkBackendKind.User, "user", parsed, hostLoopback);
        }
        catch (Exception e) when (e is ArgumentException or VmmFault)
        {
            throw new DeviceOptionException($"--net {list.Text}: {e.Message}");
        }
    }
}
