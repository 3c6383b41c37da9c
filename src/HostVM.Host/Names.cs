using HostVM.Host.Api;

namespace HostVM.Host;

/// <summary>Names of VMs, images and networks: 1-63 lower-case letters, digits and '-', starting with a letter (safe as file and switch names).</summary>
public static class Names
{
    public const int MaxLength = 63;

    public static string Check(string? name, string field)
    {
        if (string.IsNullOrEmpty(name))
        {
            throw ApiProblem.BadRequest($"{field} is required.", field);
        }

        if (name.Length > MaxLength || !char.IsAsciiLetterLower(name[0]) || !name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-'))
        {
            throw ApiProblem.BadRequest($"{field} '{name}': use 1-{MaxLength} lower-case letters, digits and '-', starting with a letter.", field);
        }

        return name;
    }
}
