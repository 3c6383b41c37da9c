namespace HostVM.Networking.UserNet;

/// <summary>A guest address and the MAC it was last seen with.</summary>
internal readonly record struct Neighbour(uint Address, MacAddress Mac, long LastSeen);
