using System.Net;

namespace HostVM.Networking.UserNet;

/// <summary>
/// Outbound UDP: each guest flow (its port and the peer it sends to) gets its own connected host
/// socket, so replies come back on it and nothing else does. Idle flows expire. DNS sent to the
/// virtual DNS address goes to the host's name server, or to <see cref="HostDnsResolver"/> when
/// the host has none configured.
/// </summary>
internal sealed class UdpNat : IDisposable
{
    private const int DnsPort = 53;
    private const long ExpiryCheckMilliseconds = 1000;
    private const ushort FirstForwardPort = 49152;

    private readonly UserNetwork _network;
    private readonly Dictionary<FlowKey, UdpNatFlow> _flows = [];
    private readonly PerGuestCount _perGuest = new();
    private readonly IPEndPoint? _dnsServer;
    private readonly HostDnsResolver _hostResolver;
    private readonly Dictionary<ushort, UdpForwardBinding> _forwardsByPort = [];
    private readonly Dictionary<(UdpForwardListener, IPEndPoint), UdpForwardBinding> _forwardsByClient = [];
    private long _nextExpiryCheck;
    private ushort _nextForwardPort = FirstForwardPort;

    public UdpNat(UserNetwork network)
    {
        _network = network;
        _dnsServer = network.DnsServer;
        _hostResolver = new HostDnsResolver(network);
    }

    public int Count => _flows.Count;

    /// <summary>A datagram from the guest whose frames come from <paramref name="guest"/>.</summary>
    public bool Handle(FlowKey key, ReadOnlySpan<byte> data, MacAddress guest)
    {
        if (Ipv4.IsSpecial(key.RemoteAddress))
        {
            return false;
        }

        if (key.RemoteAddress == _network.GatewayAddress &&
            _forwardsByPort.TryGetValue(key.RemotePort, out var binding) &&
            binding.GuestAddress == key.GuestAddress && binding.GuestPort == key.GuestPort)
        {
            // The guest answers a host client of a UDP forward.
            binding.LastUsed = Environment.TickCount64;
            binding.Listener.SendTo(data, binding.Client);
            return true;
        }

        if (!_flows.TryGetValue(key, out var flow))
        {
            IPEndPoint target;
            if (key.RemoteAddress == _network.DnsAddress)
            {
                if (key.RemotePort != DnsPort)
                {
                    return false;
                }

                if (_dnsServer is null)
                {
                    return _hostResolver.Handle(key, data);
                }

                target = _dnsServer;
            }
            else if (_network.IsInSubnet(key.RemoteAddress) && key.RemoteAddress != _network.GatewayAddress)
            {
                // Other guests are reached through the switch, not through us.
                return false;
            }
            else if (_network.ResolveEgress(key.RemoteAddress, key.RemotePort) is { } host)
            {
                target = new IPEndPoint(Ipv4.ToAddress(host), key.RemotePort);
            }
            else
            {
                return false; // the egress policy refuses it
            }

            // Past the network's or this guest's share of host sockets, or when the host refuses one
            // (out of descriptors or buffers), the datagram is dropped, as a congested router drops it.
            if (_flows.Count >= _network.Options.MaxUdpFlows || _perGuest[guest] >= _network.Options.MaxUdpFlowsPerGuest ||
                UdpNatFlow.TryOpen(_network, key, target) is not { } opened)
            {
                _network.CountFlowRefused();
                return false;
            }

            flow = opened;
            _flows.Add(key, flow);
            _perGuest.Add(key, guest);
        }

        return flow.Send(data);
    }

    /// <summary>A datagram from a host client of a UDP forward: send it to the guest from this client's gateway port.</summary>
    public void FromForward(UdpForwardListener listener, IPEndPoint client, ReadOnlySpan<byte> data)
    {
        if (!_forwardsByClient.TryGetValue((listener, client), out var binding))
        {
            if (_forwardsByPort.Count >= _network.Options.MaxUdpFlows)
            {
                return;
            }

            ushort port = 0;
            for (int attempt = 0; attempt < 65536 - FirstForwardPort && port == 0; attempt++)
            {
                ushort candidate = _nextForwardPort;
                _nextForwardPort = candidate == ushort.MaxValue ? FirstForwardPort : (ushort)(candidate + 1);
                if (!_forwardsByPort.ContainsKey(candidate))
                {
                    port = candidate;
                }
            }

            if (port == 0)
            {
                return;
            }

            if (!_network.TryForwardTarget(listener.Bound, out uint guest))
            {
                return;
            }

            binding = new UdpForwardBinding(listener, client, port, guest, (ushort)listener.Bound.GuestPort);
            _forwardsByClient.Add((listener, client), binding);
            _forwardsByPort.Add(port, binding);
        }

        binding.LastUsed = Environment.TickCount64;
        _network.SendUdpToGuest(_network.GatewayAddress, binding.GatewayPort, binding.GuestAddress, binding.GuestPort, data);
    }

    public void OnTimer(long now)
    {
        if (now < _nextExpiryCheck)
        {
            return;
        }

        _nextExpiryCheck = now + ExpiryCheckMilliseconds;
        long idle = (long)_network.Options.UdpIdleTimeout.TotalMilliseconds;
        List<FlowKey>? expired = null;
        foreach (var (key, flow) in _flows)
        {
            if (now - flow.LastUsed > idle)
            {
                (expired ??= []).Add(key);
            }
        }

        if (expired is not null)
        {
            foreach (var key in expired)
            {
                _flows[key].Dispose();
                _flows.Remove(key);
                _perGuest.Remove(key);
            }
        }

        List<UdpForwardBinding>? idleBindings = null;
        foreach (var binding in _forwardsByPort.Values)
        {
            if (now - binding.LastUsed > idle)
            {
                (idleBindings ??= []).Add(binding);
            }
        }

        Forget(idleBindings);
    }

    /// <summary>A forward was removed: its clients' bindings go with it (the guest's replies to them are dropped from now on).</summary>
    public void ForgetForward(UdpForwardListener listener) =>
        Forget([.. _forwardsByPort.Values.Where(b => b.Listener == listener)]);

    private void Forget(List<UdpForwardBinding>? bindings)
    {
        foreach (var binding in bindings ?? [])
        {
            _forwardsByPort.Remove(binding.GatewayPort);
            _forwardsByClient.Remove((binding.Listener, binding.Client));
        }
    }

    public void Dispose()
    {
        foreach (var flow in _flows.Values)
        {
            flow.Dispose();
        }

        _flows.Clear();
        _perGuest.Clear();
    }
}
