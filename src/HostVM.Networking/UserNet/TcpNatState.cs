namespace HostVM.Networking.UserNet;

/// <summary>Where a <see cref="TcpNatConnection"/> is in its life. Half-closes are tracked by flags, not states.</summary>
internal enum TcpNatState
{
    /// <summary>The guest sent SYN; the host socket is connecting. The guest hears nothing until it succeeds.</summary>
    Connecting,

    /// <summary>We sent SYN-ACK to the guest and wait for its ACK.</summary>
    SynReceived,

    /// <summary>A host forward: we sent SYN to the guest and wait for its SYN-ACK.</summary>
    SynSent,

    Established,

    /// <summary>Both sides closed; lingers briefly to re-ACK a retransmitted FIN.</summary>
    TimeWait,

    Closed,
}
