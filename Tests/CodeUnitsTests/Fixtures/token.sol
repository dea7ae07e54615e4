pragma solidity ^0.8.0;

contract Token {
    uint256 total;

    function mint(uint256 amount) public {
        total += amount;
    }
}
