using System.Net.Sockets;
using HostVM.Networking;
using HostVM.Networking.Switch;
using HostVM.Networking.Tap;
using HostVM.Networking.UserNet;

namespace HostVM.Cli;

/// <summary>Opens the network backend a --net option names: user-mode NAT, a switch port or a TAP device.</summary>
public static class NetworkBackends
{
    public const string Keys = "user (hostfwd=, host-loopback=), switch=NAME, tap=IFNAME, mac=, [rx-|tx-]bw=, [rx-|tx-]ops= and their -burst";

    public static IPacketPort Open(KeyValueList list, List<string> notes)
    {
        ArgumentNullException.ThrowIfNull(list);
        ArgumentNullException.ThrowIfNull(notes);
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
                return SwitchPort.Open(switchName);
            }

            if (tap is not null)
            {
                return TapPort.Open(tap);
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

            var user = new UserNetwork(new UserNetworkOptions { HostForwards = parsed, Egress = EgressPolicy.UserMode(hostLoopback) });
            foreach (var bound in user.BoundForwards)
            {
                notes.Add($"user network: forwarding {bound}");
            }

            return user;
        }
        catch (Exception e) when (e is IOException or SocketException or ArgumentException or UnauthorizedAccessException or InvalidOperationException)
        {
            throw new DeviceOptionException($"--net {list.Text}: {e.Message}");
        }
    }
}
